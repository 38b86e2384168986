package keystate

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Causes, as the scripts return them.
const (
	CauseNone    = int64(srl.CauseNone)
	CauseLimit   = int64(srl.CauseLimit)
	CauseQuota   = int64(srl.CauseQuota)
	CauseBlocked = int64(srl.CauseBlocked)
	CauseProbe   = int64(srl.CauseProbe)
)

// ProbePoll is the RetryAfter of a request refused while another one
// probes: short, since the probe's response usually arrives within a round
// trip, and bounded by the lease.
const ProbePoll = 20 * time.Millisecond

const probePoll = int64(ProbePoll / time.Microsecond)

// CountSpan is the span over which admissions are counted while a key's
// server says nothing about its budget.
const CountSpan = time.Minute

const countSpan = int64(CountSpan / time.Microsecond)

// Cost is a request's cost in one unit other than requests.
type Cost struct {
	Unit string
	N    int64
}

// Charge is a settled spend in script units (smartratelimit.Charge).
type Charge struct {
	Unit    string
	N, Mark int64
}

// Item is one request in script units.
type Item struct {
	N       int64 // cost in requests and in every limit
	MaxWait int64 // µs, the longest reservation accepted
	// All and NFixed come from CompileRequest.
	All    []Limit
	NFixed int
	Costs  []Cost
	Probe  int64 // µs, the probe lease; 0: never probe
}

// CopyTo copies the item into dst, its limits and costs into the given
// buffers (which must hold them), so that nothing of dst points into it:
// a caller's item, built on its stack, stays there. Every field of Item is
// copied here.
func (it *Item) CopyTo(dst *Item, limits []Limit, costs []Cost) {
	*dst = Item{
		N: it.N, MaxWait: it.MaxWait, NFixed: it.NFixed, Probe: it.Probe,
		All:   limits[:copy(limits, it.All)],
		Costs: costs[:copy(costs, it.Costs)],
	}
}

// costIndex is unit's place in a Result's Marks: 0 for requests, 1+i for
// Costs[i]; -1 when the item costs nothing in it.
func (it *Item) costIndex(unit string) int {
	if unit == srl.UnitRequests {
		return 0
	}
	for i, c := range it.Costs {
		if c.Unit == unit {
			return i + 1
		}
	}
	return -1
}

// need is the item's cost in unit.
func (it *Item) need(unit string) int64 {
	if unit == srl.UnitRequests {
		return it.N
	}
	for _, c := range it.Costs {
		if c.Unit == unit {
			return c.N
		}
	}
	return 0
}

// Result is the reply of Acquire.
type Result struct {
	Allowed bool
	// Wait is the reservation delay when allowed, the retry-after when not.
	Wait       int64
	Remaining  int64 // -1 when nothing limits the key
	ResetAfter int64
	Cause      int64
	// One quota after the decision (the one that refused, else the one in
	// requests, else the first), so that a process can remember the last
	// shared state it saw: QuotaResetAfter is 0 when no quota is known.
	QuotaLimit, QuotaRemaining, QuotaResetAfter int64
	BlockedFor                                  int64
	// Report asks the caller to observe the response even without
	// rate-limit headers: the probe, a streak to end, or a spend from a
	// quota to settle.
	Report bool
	// ReportNow says the fleet waits on that observation: the request holds
	// the probe lease, or a streak of refusals waits for a success to end
	// it. (Report is set too.)
	ReportNow bool
	// Marks are, for an allowed request, the marks (Quota.Mark) of the
	// quotas it spent from: Marks[0] in requests, Marks[1+i] in the item's
	// Costs[i]; 0 where the key had no quota in that unit.
	Marks [srl.MaxQuotas + 1]int64
}

// rollQuotas brings every quota of qs to now, in place, forgetting those
// that cannot roll; it reports whether one was forgotten.
func rollQuotas(qs []Quota, now int64) (kept []Quota, dropped bool) {
	kept = qs[:0]
	for _, q := range qs {
		if q.roll(now) {
			kept = append(kept, q)
		} else {
			dropped = true
		}
	}
	return kept, dropped
}

// rollQuotas brings the state's quotas to now; a quota forgotten ends the
// episode, so a new one may probe again.
func (s *State) rollQuotas(now int64) {
	var dropped bool
	if s.Quotas, dropped = rollQuotas(s.Quotas, now); dropped {
		s.ProbeUntil = 0
	}
}

// probeState says whether it applies to this request: probing is asked
// for, the server is not known to send no headers, and either no quota is
// known (and no default limit stands in for one) or a quota's window was
// entered by a reset and not yet confirmed. free reports that this episode's
// lease was not taken yet.
func (s *State) probeState(now int64, it *Item) (applies, free bool) {
	if it.Probe <= 0 || s.bareUntil(now) > now {
		return false, false
	}
	if len(s.Quotas) == 0 {
		return it.NFixed == len(it.All), s.ProbeUntil == 0
	}
	since := int64(-1)
	for i := range s.Quotas {
		if q := &s.Quotas[i]; q.assumed() {
			since = max(since, q.start())
		}
	}
	return since >= 0, s.ProbeUntil <= since
}

// Acquire decides one request at now into r. When it changes the state it
// returns the furthest horizon of what it wrote (the TTL must reach it),
// else 0. Default limits apply only while no quota is known.
//
// A request is refused when a block is in force, when a quota has less
// available than its cost in that quota's unit, when a pacing limit's wait
// exceeds the reservation accepted (at most MaxReservation), when a window
// limit has no room for it now (a window is never reserved), or when
// another request holds the probe lease. Otherwise its cost is spent from
// every limit and every quota at once.
//
// A refusal changes nothing, not even the quotas' rollover, which is
// computed on a copy: storage that is written only when something is spent
// (Redis) must agree with memory even when the clock steps back.
func (s *State) Acquire(now int64, it *Item, r *Result) (horizon int64) {
	var buf [srl.MaxQuotas]Quota
	quotas, dropped := rollQuotas(buf[:copy(buf[:], s.Quotas)], now)
	probeUntil := s.ProbeUntil
	if dropped {
		probeUntil = 0
	}
	view := State{Quotas: quotas, ProbeUntil: probeUntil, BareUntil: s.BareUntil}
	limits := Applicable(it.All, it.NFixed, len(quotas) > 0)
	n, maxWait := it.N, min(it.MaxWait, maxReservation)

	var wait, cause int64
	blocked := s.blockedUntil(now)
	if blocked > now {
		wait, cause = blocked-now, CauseBlocked
	}
	shown := -1
	for i := range quotas {
		q := &quotas[i]
		if w := q.wait(now, it.need(q.Unit)); w > wait {
			wait, cause, shown = w, CauseQuota, i
		}
	}
	// at[i] is pacing limits[i]'s TAT, read once and bounded; slot[i] its
	// index in TATs, or a window limit's in Windows.
	var at [srl.MaxLimits]int64
	var slot [srl.MaxLimits]int
	var gcraWait, winWait int64
	for i, l := range limits {
		if l.Kind == KindWindow {
			slot[i] = s.findWindow(l)
			v := s.windowAt(l, slot[i], now)
			winWait = max(winWait, v.wait(l, n, now))
			continue
		}
		slot[i] = s.find(l)
		at[i] = now
		if slot[i] >= 0 {
			at[i] = clamp(s.TATs[slot[i]].At, now, now+l.tatBound())
		}
		gcraWait = max(gcraWait, at[i]+n*l.Interval-l.Burst*l.Interval-now)
	}
	applies, free := view.probeState(now, it)
	if lease := view.probeUntil(now); wait == 0 && gcraWait <= maxWait && winWait == 0 && applies && lease > now {
		wait, cause = min(lease-now, probePoll), CauseProbe
	}

	*r = Result{BlockedFor: max(blocked-now, 0), Report: s.Throttles > 0 || len(quotas) > 0, ReportNow: s.Throttles > 0}
	remaining, reset := int64(-1), r.BlockedFor
	if wait > 0 || gcraWait > maxWait || winWait > 0 {
		// A window is never reserved: its wait counts whole, and the
		// request waits for the later of the two.
		if limWait := max(gcraWait, winWait); limWait > wait && cause != CauseProbe {
			wait, cause = limWait, CauseLimit
		}
		if blocked > now {
			remaining = 0
		}
		for i, l := range limits {
			if l.Kind == KindWindow {
				v := s.windowAt(l, slot[i], now)
				remaining = minRemaining(remaining, max(l.Rate-v.Count, 0))
				reset = max(reset, v.resetAfter(l, now))
				continue
			}
			remaining = minRemaining(remaining, max(FloorDiv(now+l.Burst*l.Interval-at[i], l.Interval), 0))
			reset = max(reset, at[i]-now)
		}
		remaining, reset = view.quotaView(now, remaining, reset, shown, r)
		r.Wait, r.Remaining, r.ResetAfter, r.Cause = wait, remaining, reset, cause
		return 0
	}

	// Stored fields first, then new ones (which may push others out and
	// so move the stored ones' indices).
	for i, l := range limits {
		if l.Kind == KindWindow {
			v := s.windowAt(l, slot[i], now)
			v.Counts[0] += n
			v.Count += n
			if slot[i] >= 0 {
				s.Windows[slot[i]].Newest, s.Windows[slot[i]].Counts = v.B, v.Counts
			}
			horizon = max(horizon, v.until(l))
			remaining = minRemaining(remaining, l.Rate-v.Count)
			reset = max(reset, v.resetAfter(l, now))
			continue
		}
		t := at[i] + n*l.Interval
		if slot[i] >= 0 {
			s.TATs[slot[i]].At = t
		}
		horizon = max(horizon, t)
		remaining = minRemaining(remaining, max(FloorDiv(now+l.Burst*l.Interval-t, l.Interval), 0))
		reset = max(reset, t-now)
	}
	for i, l := range limits {
		if slot[i] >= 0 {
			continue
		}
		s.makeRoom(now, limits)
		if l.Kind == KindWindow {
			w := Window{Limit: l, Newest: FloorDiv(now, l.Interval)}
			w.Counts[0] = n
			s.Windows = append(s.Windows, w)
		} else {
			s.TATs = append(s.TATs, TAT{Limit: l, At: at[i] + n*l.Interval})
		}
	}
	for i := range quotas {
		q := &quotas[i]
		q.spend(now, it.need(q.Unit))
		if j := it.costIndex(q.Unit); j >= 0 {
			r.Marks[j] = q.Mark()
		}
		q.ResetAt = min(q.ResetAt, now+maxHorizon)
		horizon = max(horizon, q.ResetAt+q.Window)
	}
	if applies && free {
		probeUntil = now + it.Probe
		horizon = max(horizon, probeUntil)
		r.Report, r.ReportNow = true, true
	}
	if it.Probe > 0 && len(quotas) == 0 {
		// Count what the fleet is admitted while the server says nothing,
		// in spans of CountSpan: a refusal with Retry-After then tells how
		// much it allows (see Observe).
		if s.AdmittedSince == 0 || now-s.AdmittedSince > countSpan {
			s.AdmittedSince, s.Admitted, s.Refused = now, 0, 0
		}
		s.Admitted += n
		horizon = max(horizon, s.AdmittedSince+countSpan)
	}
	if horizon > 0 {
		// Written as storage writes it: only when something is spent.
		s.Quotas = append(s.Quotas[:0], quotas...)
		s.ProbeUntil = probeUntil
	}
	remaining, reset = view.quotaView(now, remaining, reset, -1, r)
	r.Allowed, r.Wait, r.Remaining, r.ResetAfter = true, max(gcraWait, 0), remaining, reset
	return horizon
}

// quotaView folds the quotas into a decision's remaining and reset, and
// reports one of them in r: shown (the one that refused) when given, else
// the one in requests, else the first.
func (s *State) quotaView(now, remaining, reset int64, shown int, r *Result) (int64, int64) {
	for i := range s.Quotas {
		q := &s.Quotas[i]
		a := max(q.available(now), 0)
		remaining = minRemaining(remaining, a)
		if a < q.Limit {
			reset = max(reset, q.resetAfter(now))
		}
		if shown < 0 && q.Unit == srl.UnitRequests {
			shown = i
		}
	}
	if shown < 0 && len(s.Quotas) > 0 {
		shown = 0
	}
	if shown >= 0 {
		q := &s.Quotas[shown]
		r.QuotaLimit, r.QuotaRemaining, r.QuotaResetAfter = q.Limit, max(q.available(now), 0), q.resetAfter(now)
	}
	return remaining, reset
}

// makeRoom makes room for one more limit field: a key holds at most
// MaxLimitFields, TATs and windows together. Past it, stale fields (a TAT
// at or before now, a window whose counts have all left its span: both
// admit exactly like absent ones) are dropped, then the one that goes stale
// first (the lowest TAT or window end, ties broken by the lowest field
// name, as the script breaks them) among those the request does not use
// (own): a request's own limits keep their state, so its decision stays
// right, and only a key given more limits than it can hold forgets one.
func (s *State) makeRoom(now int64, own []Limit) {
	if len(s.TATs)+len(s.Windows) < MaxLimitFields {
		return
	}
	tats := s.TATs[:0]
	for _, x := range s.TATs {
		if x.At > now {
			tats = append(tats, x)
		}
	}
	s.TATs = tats
	wins := s.Windows[:0]
	for i := range s.Windows {
		if w := &s.Windows[i]; w.until(now) > now {
			wins = append(wins, *w)
		}
	}
	s.Windows = wins
	if len(s.TATs)+len(s.Windows) < MaxLimitFields {
		return
	}
	// The lowest end: a TAT's index, or −1 − a window's. Names are built
	// on the stack, and only to break a tie.
	// (A name is at most 49 bytes: two prefixes and three numbers below
	// MaxSpan in µs.)
	low, lowAt, found := 0, int64(0), false
	var lowBuf, buf [64]byte
	var lowName []byte
	better := func(at int64, l Limit) bool {
		if contains(own, l) {
			return false
		}
		if !found || at < lowAt {
			return true
		}
		return at == lowAt && string(l.appendField(buf[:0])) < string(lowName)
	}
	take := func(i int, at int64, l Limit) {
		low, lowAt, found = i, at, true
		lowName = l.appendField(lowBuf[:0])
	}
	for i, x := range s.TATs {
		if better(x.At, x.Limit) {
			take(i, x.At, x.Limit)
		}
	}
	for i := range s.Windows {
		if w := &s.Windows[i]; better(w.until(now), w.Limit) {
			take(-1-i, w.until(now), w.Limit)
		}
	}
	switch {
	case !found:
		// Only the request's own limits: it never has that many.
	case low >= 0:
		s.TATs = append(s.TATs[:low], s.TATs[low+1:]...)
	default:
		s.Windows = append(s.Windows[:-1-low], s.Windows[-low:]...)
	}
}

// until is when the window's last count leaves its span, 0 when nothing
// counts (see windowView.until).
func (w *Window) until(now int64) int64 {
	v := w.view(now)
	return v.until(w.Limit)
}

func minRemaining(acc, v int64) int64 {
	if acc < 0 || v < acc {
		return v
	}
	return acc
}
