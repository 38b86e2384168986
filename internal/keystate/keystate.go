// Package keystate is the state machine of one key's budget, in Go, on
// integer microseconds. It is the reference the Lua scripts in package lua
// mirror step for step: the in-memory fallback runs it directly, the Redis
// backend decodes script replies into its types, and a differential fuzz
// test holds the two to identical replies.
//
// Every value is an integer number of microseconds or units, and all of
// them stay below 2^53, so the same arithmetic on Lua's doubles is exact.
package keystate

import (
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Causes, as the scripts return them.
const (
	CauseNone    = int64(srl.CauseNone)
	CauseLimit   = int64(srl.CauseLimit)
	CauseQuota   = int64(srl.CauseQuota)
	CauseBlocked = int64(srl.CauseBlocked)
)

// Limit is a validated smartratelimit.Limit in script units. Rate, Period
// and Burst together are its identity: each distinct limit has its own TAT.
type Limit struct {
	Rate     int64 // events per Period
	Period   int64 // µs
	Burst    int64
	Interval int64 // emission interval T, µs
}

// Compile converts a limit that passed Validate.
func Compile(l srl.Limit) Limit {
	return Limit{
		Rate:     int64(l.Rate),
		Period:   l.PeriodMicros(),
		Burst:    int64(l.EffectiveBurst()),
		Interval: l.IntervalMicros(),
	}
}

func (l Limit) same(o Limit) bool {
	return l.Rate == o.Rate && l.Period == o.Period && l.Burst == o.Burst
}

// CompileRequest compiles a request's limits into buf: the fixed limits
// first, then the default ones, whose count it returns beside. A limit given
// twice is kept once, and a default limit that is also fixed is dropped,
// since the fixed one always applies: the scripts never see one TAT twice.
// The limits must be valid; see Prepare.
func CompileRequest(buf []Limit, fixed, defaults []srl.Limit) (all []Limit, nFixed int) {
	all = buf[:0]
	for _, l := range fixed {
		if c := Compile(l); !contains(all, c) {
			all = append(all, c)
		}
	}
	nFixed = len(all)
	for _, l := range defaults {
		if c := Compile(l); !contains(all, c) {
			all = append(all, c)
		}
	}
	return all, nFixed
}

// maxSpan is smartratelimit.MaxSpan in microseconds.
const maxSpan = int64(srl.MaxSpan / time.Microsecond)

// Prepare validates r and compiles its limits into buf in one pass: it is
// r.Validate followed by CompileRequest, with one division per limit
// instead of four, for the hot path of the in-memory store. Whenever it
// finds a fault it returns r.Validate's error, so both always agree (a
// test holds them to it).
func Prepare(buf []Limit, r srl.Request) (all []Limit, nFixed int, err error) {
	if r.Key == "" || r.N < 1 || r.MaxWait < 0 || r.MaxWait > srl.MaxSpan || len(r.Limits)+len(r.DefaultLimits) > srl.MaxLimits {
		return nil, 0, r.Validate()
	}
	n := int64(r.N)
	all = buf[:0]
	for i, set := range [2][]srl.Limit{r.Limits, r.DefaultLimits} {
		if i == 1 {
			nFixed = len(all)
		}
		for _, l := range set {
			if l.Rate <= 0 || l.Period < time.Microsecond || l.Period > srl.MaxSpan || l.Burst < 0 {
				return nil, 0, r.Validate()
			}
			c := Compile(l)
			hi, span := bits.Mul64(uint64(c.Burst), uint64(c.Interval))
			if c.Rate > c.Period || hi != 0 || span > uint64(maxSpan) || n > c.Burst {
				return nil, 0, r.Validate()
			}
			if !contains(all, c) {
				all = append(all, c)
			}
		}
	}
	return all, nFixed, nil
}

// Applicable returns the limits that apply: the fixed ones, and the
// default ones too while no quota is known.
func Applicable(all []Limit, nFixed int, quotaKnown bool) []Limit {
	if quotaKnown {
		return all[:nFixed]
	}
	return all
}

func contains(ls []Limit, l Limit) bool {
	for _, x := range ls {
		if x.same(l) {
			return true
		}
	}
	return false
}

// args caches Args: a process uses a handful of limits, and their script
// arguments would otherwise be formatted and boxed for every decision. It
// stops growing at maxCachedArgs limits, so a process that makes limits up
// per tenant pays the formatting instead of unbounded memory.
var (
	args       sync.Map // Limit → *[3]any
	argsCached atomic.Int64
)

const maxCachedArgs = 4096

// Field is the name of the limit's TAT in the Redis hash:
// "g:<rate>:<period µs>", with ":<burst>" appended when the burst is not 1.
func (l Limit) Field() string { return l.Args()[0].(string) }

// Args returns the limit's part of acquire.lua's arguments: its field, its
// emission interval and its burst, ready for a go-redis call. The array is
// shared; do not change it.
func (l Limit) Args() *[3]any {
	if a, ok := args.Load(l); ok {
		return a.(*[3]any)
	}
	a := &[3]any{l.field(), l.Interval, l.Burst}
	if argsCached.Load() < maxCachedArgs {
		if _, loaded := args.LoadOrStore(l, a); !loaded {
			argsCached.Add(1)
		}
	}
	return a
}

func (l Limit) field() string {
	b := make([]byte, 0, 40)
	b = append(b, "g:"...)
	b = strconv.AppendInt(b, l.Rate, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, l.Period, 10)
	if l.Burst != 1 {
		b = append(b, ':')
		b = strconv.AppendInt(b, l.Burst, 10)
	}
	return string(b)
}

// TAT is one limit's theoretical arrival time.
type TAT struct {
	Limit Limit
	At    int64 // µs
}

// State is everything stored for one key. The zero value is an empty key.
type State struct {
	TATs []TAT
	// The server's quota: QuotaResetAt > 0 once a response told us.
	QuotaLimit, QuotaRemaining, QuotaResetAt, QuotaWindow int64
	// BlockedUntil comes from Retry-After or from backoff after 429s.
	BlockedUntil int64
	// Throttles counts consecutive refusals without Retry-After.
	Throttles int64
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
	for i := range s.TATs {
		if s.TATs[i].Limit.same(l) {
			s.TATs[i].At = at
			return
		}
	}
	s.TATs = append(s.TATs, TAT{Limit: l, At: at})
}

// quota returns the server quota in effect at now. A quota whose reset has
// passed counts as refilled to its last known limit, in a window that
// follows the stored one. A quota with an unknown limit is forgotten once
// its reset passes, so it can never lock a key for good.
func (s *State) quota(now int64) (known bool, remaining, resetAt int64) {
	qa := s.QuotaResetAt
	if qa <= 0 {
		return false, 0, 0
	}
	if qa > now {
		return true, s.QuotaRemaining, qa
	}
	if s.QuotaLimit <= 0 {
		return false, 0, 0
	}
	w := s.QuotaWindow
	if w < 1 {
		w = 1
	}
	return true, s.QuotaLimit, qa + (FloorDiv(now-qa, w)+1)*w
}

// Result is the reply of Acquire.
type Result struct {
	Allowed bool
	// Wait is the reservation delay when allowed, the retry-after when not.
	Wait       int64
	Remaining  int64 // -1 when nothing limits the key
	ResetAfter int64
	Cause      int64
	// The server quota and block after the decision, so that a process can
	// remember the last shared state it saw: QuotaResetAfter is 0 when no
	// quota is known.
	QuotaLimit, QuotaRemaining, QuotaResetAfter int64
	BlockedFor                                  int64
}

// Acquire decides a request of cost n at time now into r. all and nFixed
// come from CompileRequest; default limits apply only while no quota is
// known. When it changes the state it returns the furthest horizon of what
// it wrote (the TTL must reach it), else 0.
func (s *State) Acquire(now, n, maxWait int64, all []Limit, nFixed int, r *Result) (horizon int64) {
	known, qr, qa := s.quota(now)
	limits := Applicable(all, nFixed, known)

	var wait, cause int64
	if s.BlockedUntil > now {
		wait, cause = s.BlockedUntil-now, CauseBlocked
	}
	if known && qr < n && qa-now > wait {
		wait, cause = qa-now, CauseQuota
	}
	// at[i] is limits[i]'s TAT, read once; slot[i] its index in s.TATs.
	var at [srl.MaxLimits]int64
	var slot [srl.MaxLimits]int
	var gcraWait int64
	for i, l := range limits {
		slot[i] = s.find(l)
		at[i] = now
		if slot[i] >= 0 {
			at[i] = max(s.TATs[slot[i]].At, now)
		}
		gcraWait = max(gcraWait, at[i]+n*l.Interval-l.Burst*l.Interval-now)
	}

	*r = Result{BlockedFor: max(s.BlockedUntil-now, 0)}
	if known {
		r.QuotaLimit, r.QuotaResetAfter = s.QuotaLimit, qa-now
	}
	remaining, reset := int64(-1), r.BlockedFor

	if wait > 0 || gcraWait > maxWait {
		if gcraWait > wait {
			wait, cause = gcraWait, CauseLimit
		}
		if s.BlockedUntil > now {
			remaining = 0
		}
		if known {
			remaining = minRemaining(remaining, qr)
			if qr < s.QuotaLimit {
				reset = max(reset, qa-now)
			}
		}
		for i, l := range limits {
			remaining = minRemaining(remaining, max(FloorDiv(now+l.Burst*l.Interval-at[i], l.Interval), 0))
			reset = max(reset, at[i]-now)
		}
		r.Wait, r.Remaining, r.ResetAfter, r.Cause, r.QuotaRemaining = wait, remaining, reset, cause, qr
		return 0
	}

	for i, l := range limits {
		t := at[i] + n*l.Interval
		if slot[i] >= 0 {
			s.TATs[slot[i]].At = t
		} else {
			s.TATs = append(s.TATs, TAT{Limit: l, At: t})
		}
		horizon = max(horizon, t)
		remaining = minRemaining(remaining, max(FloorDiv(now+l.Burst*l.Interval-t, l.Interval), 0))
		reset = max(reset, t-now)
	}
	if known {
		qr -= n
		s.QuotaRemaining, s.QuotaResetAt = qr, qa
		horizon = max(horizon, qa+s.QuotaWindow)
		remaining = minRemaining(remaining, qr)
		if qr < s.QuotaLimit {
			reset = max(reset, qa-now)
		}
	}
	r.Allowed, r.Wait, r.Remaining, r.ResetAfter, r.QuotaRemaining = true, max(gcraWait, 0), remaining, reset, qr
	if !known {
		r.QuotaRemaining = 0
	}
	return horizon
}

func minRemaining(acc, v int64) int64 {
	if acc < 0 || v < acc {
		return v
	}
	return acc
}

// Obs is a normalized smartratelimit.Observation in script units.
type Obs struct {
	Limit, Remaining     int64
	Reset, Window, Retry int64 // µs
	Limited              bool
}

// ObsFrom converts a normalized observation.
func ObsFrom(o srl.Observation) Obs {
	obs := Obs{Retry: o.RetryAfter.Microseconds(), Limited: o.Limited}
	for _, q := range o.Quotas {
		if q.Unit == srl.UnitRequests {
			obs.Limit, obs.Remaining = int64(q.Limit), int64(q.Remaining)
			obs.Reset, obs.Window = q.Reset.Microseconds(), q.Window.Microseconds()
		}
	}
	return obs
}

// Default throttle backoff: a refusal without Retry-After blocks the key
// for 1s, doubled per consecutive refusal, at most 1m.
const (
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
)

// Params returns the parameters both backends use to merge o: resets
// within a second (a quarter of a shorter window) of each other name the
// same window, which absorbs the whole-second resolution of most headers
// and the latency between responses.
func Params(o srl.Observation, backoffBase, backoffMax time.Duration) ObserveParams {
	tol := time.Second
	for _, q := range o.Quotas {
		if q.Unit == srl.UnitRequests && q.Window > 0 {
			tol = min(tol, q.Window/4)
		}
	}
	return ObserveParams{
		Tolerance:   tol.Microseconds(),
		BackoffBase: backoffBase.Microseconds(),
		BackoffMax:  backoffMax.Microseconds(),
	}
}

// ObserveParams tune Observe; the Redis backend passes them to the script.
type ObserveParams struct {
	// Tolerance is how far two reported resets may differ and still name
	// the same window.
	Tolerance int64
	// BackoffBase and BackoffMax bound the block after a refusal without
	// Retry-After: base, doubled per consecutive refusal, at most max.
	BackoffBase, BackoffMax int64
}

// Window verdicts of an observation's quota part.
const (
	WindowNone  = 0 // the observation had no quota part
	WindowNewer = 1 // it replaced the stored window
	WindowSame  = 2 // it merged into the stored window
	WindowOlder = 3 // it was older than the stored window and ignored
)

// ObserveResult is the reply of Observe: the verdict and the state after.
type ObserveResult struct {
	Window                                 int64
	QuotaLimit, QuotaRemaining, ResetAfter int64
	BlockedFor                             int64
}

// maxThrottles caps the consecutive-refusal counter; the backoff reaches
// its maximum long before.
const maxThrottles = 64

// Observe merges an observation made at now.
func (s *State) Observe(now int64, o Obs, p ObserveParams) (ObserveResult, bool) {
	before := *s
	verdict := int64(WindowNone)
	if o.Reset > 0 {
		reported := now + o.Reset
		qa := s.QuotaResetAt
		switch {
		case qa <= now || reported > qa+p.Tolerance:
			verdict = WindowNewer
			limit := o.Limit
			if limit == 0 {
				limit = max(o.Remaining, s.QuotaLimit)
			}
			s.QuotaLimit = limit
			s.QuotaRemaining = min(o.Remaining, limit)
			s.QuotaResetAt = reported
			if o.Window > 0 {
				s.QuotaWindow = o.Window
			} else {
				s.QuotaWindow = max(s.QuotaWindow, o.Reset)
			}
		case reported >= qa-p.Tolerance:
			// The same window: never more remaining, never an earlier
			// reset, so the fleet can only refill late, never early.
			verdict = WindowSame
			s.QuotaResetAt = max(qa, reported)
			s.QuotaRemaining = min(s.QuotaRemaining, o.Remaining)
			if o.Limit > 0 {
				s.QuotaLimit = o.Limit
				s.QuotaRemaining = min(s.QuotaRemaining, o.Limit)
			}
			if o.Window > 0 {
				s.QuotaWindow = o.Window
			}
		default:
			verdict = WindowOlder
		}
	}
	switch {
	case o.Limited && o.Retry == 0:
		if s.BlockedUntil+p.BackoffMax < now {
			s.Throttles = 0
		}
		s.Throttles = min(s.Throttles+1, maxThrottles)
		d := p.BackoffBase
		for i := int64(1); i < s.Throttles && d < p.BackoffMax; i++ {
			d *= 2
		}
		s.BlockedUntil = max(s.BlockedUntil, now+min(d, p.BackoffMax))
	case !o.Limited:
		s.Throttles = 0
	}
	if o.Retry > 0 {
		s.BlockedUntil = max(s.BlockedUntil, now+o.Retry)
	}
	res := ObserveResult{
		Window:         verdict,
		QuotaLimit:     s.QuotaLimit,
		QuotaRemaining: s.QuotaRemaining,
		ResetAfter:     max(s.QuotaResetAt-now, 0),
		BlockedFor:     max(s.BlockedUntil-now, 0),
	}
	return res, !s.equalScalars(&before)
}

func (s *State) equalScalars(o *State) bool {
	return s.QuotaLimit == o.QuotaLimit && s.QuotaRemaining == o.QuotaRemaining &&
		s.QuotaResetAt == o.QuotaResetAt && s.QuotaWindow == o.QuotaWindow &&
		s.BlockedUntil == o.BlockedUntil && s.Throttles == o.Throttles
}

// Grace is how long stored state outlives its horizon at least. The twin
// forgets a key exactly Grace past it; acquire.lua and observe.lua extend
// the TTL in steps, to between Grace and 2×Grace past it, so that most
// writes need no PEXPIRE.
const Grace = int64(time.Second / time.Microsecond)

// Horizon is the last instant at which the state still matters: after it
// the key behaves exactly like an empty one (a known quota is kept one
// window longer, so that it can refill instead of being forgotten).
func (s *State) Horizon() int64 {
	h := s.BlockedUntil
	for _, t := range s.TATs {
		h = max(h, t.At)
	}
	if s.QuotaResetAt > 0 {
		h = max(h, s.QuotaResetAt+s.QuotaWindow)
	}
	return h
}

// FloorDiv is floor(a/b) for b > 0, rounding toward negative infinity.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
