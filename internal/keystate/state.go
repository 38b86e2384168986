package keystate

import (
	"strconv"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// TAT is one limit's theoretical arrival time.
type TAT struct {
	Limit Limit
	At    int64 // µs
}

// Quota is the server's budget in one unit, as the fleet knows it. See the
// package documentation for the model.
type Quota struct {
	Unit string
	// Limit is the window's budget; 0 when the server never said (such a
	// quota is forgotten when its window ends).
	Limit int64
	// Window is the window's length, at least 1µs.
	Window int64
	// ResetAt is when the current window ends.
	ResetAt int64
	// Seen is what a response of the current window said was left, lowered
	// by every spend since; -1 when no response of this window was seen yet
	// (the window was entered by a reset: it is only assumed).
	Seen int64
	// Base, Gain and Spent are the ramp: Base + Gain·(elapsed/Window) −
	// Spent may be spent at a time elapsed into the window.
	Base, Gain, Spent int64
	// Date is the server's second of the newest response merged; 0 unknown.
	Date int64
	// InFlight is what was spent from the quota by requests whose responses
	// were not observed yet, as of InFlightAt: a response's remaining count
	// does not know them yet. It is forgotten InFlightAge after its last
	// change (a process that died mid-request cannot hold it for good).
	InFlight, InFlightAt int64
	// Settled counts every unit settled (its response observed, or its
	// request failed) since the quota was first seen. An admission records
	// it (Charge.Mark); when the request's response comes, what was
	// settled meanwhile is what its count may miss besides what is in
	// flight. It starts over past maxCount.
	Settled int64
	// Low is the lowest remaining count a response of the current window
	// reported (valid while Seen is not -1): a window's count only goes
	// down, so a response below it was produced after every response seen,
	// and knows every spend settled.
	Low int64
	// Refills is how the server refills, as its responses showed: 0 not
	// known yet; 1 as time passes (a later response said more was left
	// than the one before within a window, or the first response after a
	// reset found it far from full: a sliding window, a bucket), and then
	// what a newer response says is left also resets the ramp; 2 at once
	// (the first response after a reset found it full: a fixed window),
	// and then the next window's first unit is there at once, for its
	// probe.
	Refills int64
	// Inferred is 1 for a quota no header advertised: the fleet inferred
	// it from a refusal (Retry-After) of a server that sends nothing else,
	// as what it had been admitted meanwhile; a header's quota replaces it.
	Inferred int64
	// Slack is how much of ResetAt may lie past the server's true reset
	// (the resolution of the headers): a window that refills at once rolls
	// at ResetAt, never early; one that refills as time passes is placed in
	// the middle of what the headers allow (see Quota.margin).
	Slack int64
}

// State is everything stored for one key. The zero value is an empty key.
type State struct {
	// TATs holds the pacing limits' state, Windows the window limits'; a
	// key holds at most MaxLimitFields of them together.
	TATs    []TAT
	Windows []Window
	Quotas  []Quota
	// BlockedUntil comes from Retry-After or from backoff after refusals.
	BlockedUntil int64
	// Throttles counts consecutive refusals without timing information.
	Throttles int64
	// ProbeUntil is when the probe lease ends; 0 when no probe was sent in
	// this episode (see Acquire).
	ProbeUntil int64
	// BareUntil is when probing may resume for a server that answered a
	// probe without rate-limit headers.
	BareUntil int64
	// While no quota is known, what the fleet was admitted (Admitted,
	// since AdmittedSince) and refused (Refused) since, for a server that
	// says nothing but Retry-After when it refuses: its refusals teach an
	// inferred quota (see Quota.Inferred). Counted only for requests that
	// probe (Request.Probe), as httpclient's do.
	Admitted, AdmittedSince, Refused int64
}

// TAT returns the stored TAT of l, or 0.
func (s *State) TAT(l Limit) int64 {
	if i := s.find(l); i >= 0 {
		return s.TATs[i].At
	}
	return 0
}

// find returns the index of l's TAT, or -1.
func (s *State) find(l Limit) int {
	for i := range s.TATs {
		if s.TATs[i].Limit.same(l) {
			return i
		}
	}
	return -1
}

// SetTAT stores the TAT of l.
func (s *State) SetTAT(l Limit, at int64) {
	if i := s.find(l); i >= 0 {
		s.TATs[i].At = at
		return
	}
	s.TATs = append(s.TATs, TAT{Limit: l, At: at})
}

// quota returns the index of unit's quota, or -1.
func (s *State) quota(unit string) int {
	for i := range s.Quotas {
		if s.Quotas[i].Unit == unit {
			return i
		}
	}
	return -1
}

// snapshot is a copy of a state's scalars and quotas, on the stack.
type snapshot struct {
	blockedUntil, throttles, probeUntil, bareUntil int64
	admitted, admittedSince, refused               int64
	quotas                                         [srl.MaxQuotas]Quota
	n                                              int
}

func (s *State) snapshot() snapshot {
	sn := snapshot{blockedUntil: s.BlockedUntil, throttles: s.Throttles, probeUntil: s.ProbeUntil, bareUntil: s.BareUntil,
		admitted: s.Admitted, admittedSince: s.AdmittedSince, refused: s.Refused}
	sn.n = copy(sn.quotas[:], s.Quotas)
	return sn
}

// equals reports that s has the scalars and quotas of sn.
func (s *State) equals(sn snapshot) bool {
	if s.BlockedUntil != sn.blockedUntil || s.Throttles != sn.throttles || s.ProbeUntil != sn.probeUntil ||
		s.BareUntil != sn.bareUntil || s.Admitted != sn.admitted || s.AdmittedSince != sn.admittedSince ||
		s.Refused != sn.refused || len(s.Quotas) != sn.n {
		return false
	}
	for i := range s.Quotas {
		if s.Quotas[i] != sn.quotas[i] {
			return false
		}
	}
	return true
}

// Grace is how long stored state outlives its horizon at least. The twin
// forgets a key exactly Grace past it; acquire.lua and observe.lua extend
// the TTL in steps, to between Grace and 2×Grace past it, so that most
// writes need no PEXPIRE.
const Grace = int64(time.Second / time.Microsecond)

// Horizon is the last instant at which the state still matters: after it
// the key behaves exactly like an empty one. A quota matters until its
// window and the next one have passed (the next one ramps from it), a
// probe lease and a no-headers mark until they end.
func (s *State) Horizon() int64 {
	h := max(s.BlockedUntil, s.ProbeUntil, s.BareUntil)
	if s.AdmittedSince > 0 {
		h = max(h, s.AdmittedSince+countSpan)
	}
	for _, t := range s.TATs {
		h = max(h, t.At)
	}
	for i := range s.Windows {
		// A window is written at its newest sub-window, which then holds
		// a count: it matters until that sub-window leaves the span.
		w := &s.Windows[i]
		h = max(h, (w.Newest+w.Limit.Slots)*w.Limit.Interval)
	}
	for _, q := range s.Quotas {
		h = max(h, q.ResetAt+q.Window)
	}
	return h
}

// Bounds on what is read back from storage.
const (
	maxHorizon = int64(srl.MaxHorizon / time.Microsecond)
	maxCount   = int64(srl.MaxCount)
	// maxThrottles caps the consecutive-refusal counter; the backoff
	// reaches its maximum long before.
	maxThrottles = 64
	// MaxLimitFields bounds the limit fields one key holds, TATs and
	// windows together: past it, stale ones are dropped, then the one
	// closest to going stale (see State.makeRoom).
	MaxLimitFields = 64
	// rampSteps is the ramp's resolution: it refills in steps of
	// Window/rampSteps, which keeps Gain·steps exact below 2^53.
	rampSteps = 4096
)

// maxReservation is smartratelimit.MaxReservation in µs.
const maxReservation = int64(srl.MaxReservation / time.Microsecond)

// bareFor is smartratelimit.BareFor in µs.
const bareFor = int64(srl.BareFor / time.Microsecond)

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// MonotonicMicros returns a clock in µs: the wall time when it is called,
// advanced by the monotonic clock, so a wall-clock step (NTP, a VM resume)
// never gives or takes budget. Processes sharing state (an SQLite file)
// share the machine's wall clock, which orders their decisions.
func MonotonicMicros() func() int64 {
	base := time.Now()
	baseMicros := base.UnixMicro()
	return func() int64 { return baseMicros + int64(time.Since(base)/time.Microsecond) }
}

// ClampRanges bounds every value of a state read back from storage to the
// range the rules can produce, so that garbage can neither overflow the
// arithmetic nor poison the key. Bounds relative to now (a block, a lease,
// a TAT or a reset further ahead than allowed, after a clock step) are
// applied where the values are used, in Go and in the scripts alike, and
// written back bounded by the next write. It also bounds how many quotas
// (srl.MaxQuotas) and limit fields (MaxLimitFields, TATs first) a state
// holds, as no rule makes more.
func (s *State) ClampRanges() {
	if len(s.Quotas) > srl.MaxQuotas {
		s.Quotas = s.Quotas[:srl.MaxQuotas]
	}
	if len(s.TATs) > MaxLimitFields {
		s.TATs = s.TATs[:MaxLimitFields]
	}
	if len(s.TATs)+len(s.Windows) > MaxLimitFields {
		s.Windows = s.Windows[:MaxLimitFields-len(s.TATs)]
	}
	s.Throttles = clamp(s.Throttles, 0, maxThrottles)
	s.BlockedUntil = max(s.BlockedUntil, 0)
	s.ProbeUntil = max(s.ProbeUntil, 0)
	s.BareUntil = max(s.BareUntil, 0)
	for i := range s.Quotas {
		q := &s.Quotas[i]
		q.Limit = clamp(q.Limit, 0, maxCount)
		q.Window = clamp(q.Window, 1, maxHorizon)
		q.ResetAt = max(q.ResetAt, 0)
		q.Seen = clamp(q.Seen, -1, maxCount)
		q.Base = clamp(q.Base, 0, maxCount)
		q.Gain = clamp(q.Gain, 0, maxCount)
		q.Spent = clamp(q.Spent, 0, 2*maxCount)
		q.Date = clamp(q.Date, 0, maxCount)
		q.InFlight = clamp(q.InFlight, 0, maxCount)
		q.InFlightAt = max(q.InFlightAt, 0)
		q.Settled = clamp(q.Settled, 0, maxCount)
		q.Low = clamp(q.Low, 0, maxCount)
		q.Refills = clamp(q.Refills, 0, 2)
		q.Slack = clamp(q.Slack, 0, maxHorizon)
		q.Inferred = clamp(q.Inferred, 0, 1)
	}
	for i := range s.Windows {
		s.Windows[i].clampRanges()
	}
	s.Admitted = clamp(s.Admitted, 0, maxCount)
	s.AdmittedSince = max(s.AdmittedSince, 0)
	s.Refused = clamp(s.Refused, 0, maxCount)
}

// blockedUntil, probeUntil and bareUntil are the stored times bounded
// relative to now.
func (s *State) blockedUntil(now int64) int64 { return min(s.BlockedUntil, now+maxHorizon) }
func (s *State) probeUntil(now int64) int64   { return min(s.ProbeUntil, now+maxHorizon) }
func (s *State) bareUntil(now int64) int64    { return min(s.BareUntil, now+bareFor) }

// tatBound is how far ahead of now a limit's TAT may lie: its span (the
// period, or the burst's worth of intervals when that is longer) plus the
// longest reservation.
func (l Limit) tatBound() int64 {
	return max(l.Period, l.Burst*l.Interval) + maxReservation
}

// EncodeQuotas writes the quotas as the Redis hash field "q" holds them:
// "<unit> <limit> <window> <reset-at> <seen> <base> <gain> <spent> <date>
// <in-flight> <in-flight-at> <refills> <slack> <inferred> <settled> <low>" per quota,
// joined by ';'.
// acquire.lua and observe.lua write the same bytes.
func EncodeQuotas(qs []Quota) string {
	var b []byte
	for i, q := range qs {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, q.Unit...)
		for _, v := range [...]int64{q.Limit, q.Window, q.ResetAt, q.Seen, q.Base, q.Gain, q.Spent, q.Date, q.InFlight, q.InFlightAt, q.Refills, q.Slack, q.Inferred, q.Settled, q.Low} {
			b = append(b, ' ')
			b = strconv.AppendInt(b, v, 10)
		}
	}
	return string(b)
}

// DecodeQuotas reads the "q" field. An entry that does not parse is
// skipped, as the scripts skip it; the values are not yet clamped.
func DecodeQuotas(s string, into []Quota) []Quota {
	into = into[:0]
	for s != "" {
		entry := s
		if i := strings.IndexByte(s, ';'); i >= 0 {
			entry, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if q, ok := decodeQuota(entry); ok && len(into) < srl.MaxQuotas {
			into = append(into, q)
		}
	}
	return into
}

func decodeQuota(entry string) (Quota, bool) {
	unit, rest, ok := strings.Cut(entry, " ")
	if !ok || srl.ValidUnit(unit) != nil {
		return Quota{}, false
	}
	var v [15]int64
	for i := range v {
		field := rest
		if i < len(v)-1 {
			if field, rest, ok = strings.Cut(rest, " "); !ok {
				return Quota{}, false
			}
		}
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil || !digitsOnly(field) {
			return Quota{}, false
		}
		v[i] = n
	}
	return Quota{Unit: unit, Limit: v[0], Window: v[1], ResetAt: v[2], Seen: v[3], Base: v[4], Gain: v[5], Spent: v[6], Date: v[7],
		InFlight: v[8], InFlightAt: v[9], Refills: v[10], Slack: v[11], Inferred: v[12], Settled: v[13], Low: v[14]}, true
}

// digitsOnly accepts what the scripts' pattern "%-?%d+" accepts.
func digitsOnly(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
