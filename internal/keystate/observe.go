package keystate

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// QuotaObs is one observed quota in script units.
type QuotaObs struct {
	Unit                 string
	Limit, Remaining     int64
	Reset, Window, Slack int64 // µs
}

// Obs is a normalized smartratelimit.Observation in script units.
type Obs struct {
	Quotas []QuotaObs
	// Charged is what the request the response answers was spent at
	// admission, no longer in flight; Refunded what it was spent and is
	// given back (it never reached the server).
	Charged  []Charge
	Refunded []Cost
	Retry    int64 // µs
	// Date is the server's second when it produced the response; 0 unknown.
	Date                     int64
	Limited, Succeeded, Bare bool
}

// ObsFrom converts a normalized observation.
func ObsFrom(o srl.Observation) Obs {
	obs := Obs{Retry: o.RetryAfter.Microseconds(), Limited: o.Limited, Succeeded: o.Succeeded, Bare: o.Bare}
	if !o.Date.IsZero() && o.Date.Unix() > 0 {
		obs.Date = o.Date.Unix()
	}
	if o.Charged != nil {
		obs.Charged = make([]Charge, 0, len(o.Charged))
	}
	for _, c := range o.Charged {
		obs.Charged = append(obs.Charged, Charge{Unit: c.Unit, N: int64(c.N), Mark: c.Mark})
	}
	for _, c := range o.Refunded {
		obs.Refunded = append(obs.Refunded, Cost{Unit: c.Unit, N: int64(c.N)})
	}
	for _, q := range o.Quotas {
		obs.Quotas = append(obs.Quotas, QuotaObs{
			Unit: q.Unit, Limit: int64(q.Limit), Remaining: int64(q.Remaining),
			Reset: q.Reset.Microseconds(), Window: q.Window.Microseconds(), Slack: q.ResetSlack.Microseconds(),
		})
	}
	return obs
}

// Default throttle backoff: a refusal without timing information blocks
// the key for 1s, doubled per consecutive refusal, at most 1m.
const (
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
)

// ObserveParams tune Observe; the Redis backend passes them to the script.
type ObserveParams struct {
	// Tolerance is how far two reported resets may differ and still name
	// the same window (at most a quarter of the window, at least the
	// reset's slack).
	Tolerance int64
	// BackoffBase and BackoffMax bound the block after a refusal without
	// timing information: base, doubled per consecutive refusal, at most
	// max.
	BackoffBase, BackoffMax int64
}

// Params returns the parameters both backends use: resets within a second
// of each other (less in a short window) name the same window, which
// absorbs the whole-second resolution of most headers and the latency
// between responses.
func Params(backoffBase, backoffMax time.Duration) ObserveParams {
	return ObserveParams{
		Tolerance:   time.Second.Microseconds(),
		BackoffBase: backoffBase.Microseconds(),
		BackoffMax:  backoffMax.Microseconds(),
	}
}

// ObserveResult is the key's state after Observe, for a process to
// remember: one quota (the one in requests, else the first; ResetAfter 0
// when none) and the block.
type ObserveResult struct {
	QuotaLimit, QuotaRemaining, ResetAfter int64
	BlockedFor                             int64
}

// Observe merges an observation made at now; see the package documentation
// for the rules. It reports whether the state changed.
func (s *State) Observe(now int64, o Obs, p ObserveParams) (ObserveResult, bool) {
	before := s.snapshot()
	s.rollQuotas(now)
	for _, c := range o.Charged {
		if i := s.quota(c.Unit); i >= 0 {
			s.Quotas[i].settle(now, c.N)
		}
	}
	for _, c := range o.Refunded {
		if i := s.quota(c.Unit); i >= 0 {
			s.Quotas[i].refund(now, c.N)
		}
	}
	spent := false // the refusal carries a spent quota, so its reset times it
	for _, oq := range o.Quotas {
		spent = spent || oq.Remaining == 0
		mark, charged := chargeOf(o.Charged, oq.Unit)
		s.mergeQuota(now, oq, o.Date, p.Tolerance, o.Charged != nil, mark, charged)
	}
	for _, c := range o.Charged {
		// Counted as settled after the merge: this response's own count
		// includes its request, the next one's may not.
		if i := s.quota(c.Unit); i >= 0 {
			s.Quotas[i].addSettled(c.N)
		}
	}
	if len(o.Quotas) > 0 || o.Limited || o.Retry > 0 {
		// The server said something: the probe's work is done (and while
		// no quota is known, the next request may probe again).
		s.ProbeUntil = 0
	}
	blocked := s.blockedUntil(now)
	if o.Limited && o.Retry > 0 && len(o.Quotas) == 0 {
		s.infer(now, o, blocked > now)
	}
	switch {
	case o.Retry > 0:
		blocked = max(blocked, now+o.Retry)
	case o.Limited && !spent && blocked <= now:
		// A refusal without timing information, not one of those that
		// arrive while the block an earlier one caused is in force.
		if blocked+p.BackoffMax < now {
			s.Throttles = 0
		}
		s.Throttles = min(s.Throttles+1, maxThrottles)
		d := p.BackoffBase
		for i := int64(1); i < s.Throttles && d < p.BackoffMax; i++ {
			d *= 2
		}
		blocked = max(blocked, now+min(d, p.BackoffMax))
	}
	s.BlockedUntil = blocked
	if o.Succeeded {
		s.Throttles = 0
	}
	if o.Bare {
		// The probe's response said nothing about the budget: release the
		// lease for good in this episode, and after a success stop probing
		// a server that sends no rate-limit headers.
		if s.ProbeUntil > now {
			s.ProbeUntil = now
		}
		if o.Succeeded && len(o.Quotas) == 0 && len(s.Quotas) == 0 {
			s.BareUntil = now + bareFor
		}
	}
	res := ObserveResult{BlockedFor: max(s.BlockedUntil-now, 0)}
	res.QuotaLimit, res.QuotaRemaining, res.ResetAfter = s.shownQuota(now)
	return res, !s.equals(before)
}

// infer learns from a refusal with Retry-After of a server that
// advertises no quota: it allowed what the fleet was admitted since it
// started counting, less what it refused, in a window as long as the
// Retry-After (or the counting, when longer). That inferred quota then
// paces the fleet like an advertised one, from the end of the block.
// Refusals arriving while the block is in force (the rest of the burst)
// lower it to what was really let through; a refusal after that, despite
// the pace, cuts it by a quarter.
func (s *State) infer(now int64, o Obs, inBlock bool) {
	i := s.quota(srl.UnitRequests)
	switch {
	case i < 0 && len(s.Quotas) == 0 && s.AdmittedSince > 0:
		s.Refused++
		limit := max(s.Admitted-s.Refused, 1)
		s.Quotas = append(s.Quotas, Quota{
			Unit: srl.UnitRequests, Limit: limit, Window: max(o.Retry, now-s.AdmittedSince),
			ResetAt: now + o.Retry, Date: o.Date, Inferred: 1,
		})
	case i < 0 || s.Quotas[i].Inferred == 0:
	case inBlock && s.AdmittedSince > 0:
		s.Refused++
		q := &s.Quotas[i]
		q.Limit = max(s.Admitted-s.Refused, 1)
		q.Seen, q.Base = min(q.Seen, q.Limit), min(q.Base, q.Limit)
	default:
		q := &s.Quotas[i]
		q.Limit = max(q.Limit*3/4, 1)
		q.ResetAt, q.Seen, q.Base, q.Gain, q.Spent = max(q.ResetAt, now+o.Retry), 0, 0, 0, 0
	}
}

// mergeQuota merges one observed quota.
// settling says the observation comes from a caller that reports what each
// request was charged, so what is still in flight can be subtracted from
// what the response says is left; other observations are taken at their
// word.
func (s *State) mergeQuota(now int64, oq QuotaObs, date, tolerance int64, settling bool, mark, charged int64) {
	reported := now + oq.Reset
	length := max(oq.Reset-oq.Slack, 1)
	i := s.quota(oq.Unit)
	if i < 0 {
		if len(s.Quotas) >= srl.MaxQuotas {
			return
		}
		w := oq.Window
		if w <= 0 {
			w = length
		}
		s.Quotas = append(s.Quotas, Quota{
			Unit: oq.Unit, Limit: oq.Limit, Window: w, ResetAt: reported,
			Seen: oq.Remaining, Base: oq.Remaining, Date: date, Slack: oq.Slack, Low: oq.Remaining,
		})
		return
	}
	q := &s.Quotas[i]
	if q.Inferred == 1 {
		// The server advertises its quota after all: its word replaces
		// what was inferred.
		w := oq.Window
		if w <= 0 {
			w = length
		}
		*q = Quota{Unit: oq.Unit, Limit: oq.Limit, Window: w, ResetAt: reported,
			Seen: oq.Remaining, Base: oq.Remaining, Date: date, Slack: oq.Slack, Low: oq.Remaining}
		return
	}
	w := q.Window
	if oq.Window > 0 {
		w = oq.Window
	}
	tol := max(min(tolerance, w/4), oq.Slack)
	newer := date > 0 && q.Date > 0 && date > q.Date
	older := date > 0 && q.Date > 0 && date < q.Date
	sameWindow := reported-q.ResetAt <= tol && q.ResetAt-reported <= tol
	// What is left now, as far as this response knows: its count misses
	// what requests still in flight spent, and may miss what those settled
	// since its own was admitted spent (their responses may have been
	// produced after it), unless its count includes all of them: it comes
	// from a later second, or it says no more is left than any response of
	// the window before. (A window's count only goes down, by at least one
	// per request: a settled request whose response said as much or more
	// was counted before this one was produced. A count rounded to a step,
	// as Anthropic's, arrives as the step's floor, which holds for every
	// count of the step.) Knowing all that, it may raise what is left;
	// without its mark (see Charge), only such a response may.
	ordered := newer || sameWindow && q.Seen >= 0 && oq.Remaining <= q.Low
	meanwhile, known := q.settledSince(mark)
	fresh := oq.Remaining
	if settling {
		if ordered {
			meanwhile = 0
		}
		fresh = max(fresh-q.inFlight(now)-meanwhile, 0)
	}
	raise := settling && (ordered || known)
	// How full the window was before the fleet spent from it, as far as
	// this response tells: what it says is left, plus what the fleet has in
	// flight and this response's own request (all of which it may count).
	unspent := oq.Remaining + q.inFlight(now) + charged
	q.setLimit(oq)
	switch {
	case sameWindow:
		// The same window: a response the server produced after every
		// other says what is left now (fresh), as does one that knows what
		// was settled since its request (raise); any other only lowers it.
		// The reset only moves later.
		first := q.assumed()
		if settling {
			// More left than before shows a server that refills, when
			// costs are exact: an estimate's settling (tokens) raises it too.
			if newer && q.Seen >= 0 && fresh > q.Seen && q.Unit == srl.UnitRequests {
				q.Refills = refillsContinuously
			}
			if first {
				q.learnRefill(unspent)
			}
		}
		switch {
		case newer || first:
			q.Seen = fresh
		case raise && fresh > q.Seen:
			q.Seen = fresh
		case oq.Remaining < q.Seen:
			q.Seen = oq.Remaining
		}
		if first || oq.Remaining < q.Low {
			q.Low = oq.Remaining
		}
		// The ramp models what the window frees from now on; a count that
		// knows what was settled may raise what is left (Seen), but only a
		// later second's may move the ramp up: raised on every response of
		// a second, a sliding window's freeing is counted twice, once in
		// the raised count and again as the ramp climbs (a real sliding
		// window then refused at its boundary and cost a whole window).
		q.reanchor(now, fresh, (newer || first) && settling)
		if reported > q.ResetAt {
			q.ResetAt, q.Slack = reported, oq.Slack
		}
		q.learnWindow(oq, length, false)
	case reported > q.ResetAt && !older:
		// The server's window ends later than ours: it rolled over before
		// we did, or a new window began (a server whose windows start with
		// their first request). Roll into it now: what was left ramps to
		// the target over its length, and this response is its first word.
		left := clamp(q.available(now), 0, max(q.Limit, 0))
		q.learnWindow(oq, length, false)
		q.ResetAt, q.Slack, q.Base, q.Gain, q.Spent = reported, oq.Slack, left, max(q.target()-left, 0), 0
		// The server's window may have begun before now, but what was spent
		// since then was spent from ours: the ramp starts from what was
		// left, now, not from the window's start.
		q.Spent = q.ramp(now) - left
		q.Seen, q.Low = fresh, oq.Remaining
		if settling {
			q.learnRefill(unspent)
		}
		q.reanchor(now, fresh, !older && settling)
	case reported < q.ResetAt && (newer || q.assumed() && !older):
		// The server produced this later and its window ends earlier (the
		// stored one was an outlier), or our reset ran ahead of the
		// server's and its window is still open: it replaces ours, with
		// nothing assumed about refills.
		q.learnWindow(oq, length, true)
		q.ResetAt, q.Slack, q.Seen, q.Base, q.Gain, q.Spent = reported, oq.Slack, fresh, fresh, 0, 0
		q.Low = oq.Remaining
	}
	q.Date = max(q.Date, date)
}

// chargeOf is the mark and the units of charges' entry in unit; 0, 0 when
// there is none.
func chargeOf(charges []Charge, unit string) (mark, n int64) {
	for _, c := range charges {
		if c.Unit == unit {
			return c.Mark, c.N
		}
	}
	return 0, 0
}

// Mark is what an admission records of q: its settled count, plus one so
// that 0 means unknown.
func (q *Quota) Mark() int64 { return q.Settled + 1 }

// settledSince is what was settled since mark was taken; known is false
// for no mark, or one the count has since wrapped past.
func (q *Quota) settledSince(mark int64) (n int64, known bool) {
	if mark <= 0 || mark-1 > q.Settled {
		return 0, false
	}
	return q.Settled - (mark - 1), true
}

// addSettled counts n more units settled; at maxCount the count starts
// over, which makes every mark taken before it unknown.
func (q *Quota) addSettled(n int64) {
	if q.Settled += n; q.Settled > maxCount {
		q.Settled = 0
	}
}

// How a quota refills (Quota.Refills).
const (
	refillsUnknown      = 0
	refillsContinuously = 1 // a sliding window or a bucket: as time passes
	refillsAtOnce       = 2 // a fixed window: whole, when it rolls
)

// learnRefill reads the first word of a window, unspent (what it says is
// left with the fleet's spends since added back): far from full shows a
// server that refills as time passes; full, one that refilled at once
// (unless it was already seen to refill continuously, which stays).
func (q *Quota) learnRefill(unspent int64) {
	switch {
	case unspent < q.target()-max(1, q.target()/8):
		q.Refills = refillsContinuously
	case q.Refills == refillsUnknown:
		q.Refills = refillsAtOnce
	}
}

// reanchor brings the ramp to what a response says is left: down when it
// refilled less than modelled (or others outside the fleet spend), and,
// for a server that refills as time passes, up when the response is newer
// than anything merged and knows what is in flight (mayRaise): its windows
// are only known to a second, so the ramp runs behind it.
func (q *Quota) reanchor(now, left int64, mayRaise bool) {
	// Anchored from above, the ramp holds at most left now (what the
	// response says is left is still available as Seen), and grows from
	// there by whole units of time.
	ramp := q.rampAbove(now)
	switch {
	case left < ramp:
		q.Spent += ramp - left
	case left > ramp && mayRaise && q.Refills == refillsContinuously:
		// More room now means the window's last count was smaller than
		// modelled, and so is what it will free: the window as a whole
		// still allows no more than the target.
		q.Spent -= left - ramp
		if q.Spent < 0 {
			q.Base, q.Spent = min(q.Base-q.Spent, max(q.Limit, 0)), 0
		}
		q.Gain = max(min(q.Gain, q.target()-q.Base), 0)
	}
}

// learnWindow takes the window an observation says, else the longest reset
// seen (or, when the window is replaced by an earlier one, that reset).
func (q *Quota) learnWindow(oq QuotaObs, length int64, earlier bool) {
	switch {
	case oq.Window > 0:
		q.Window = oq.Window
	case earlier:
		q.Window = length
	default:
		q.Window = max(q.Window, length)
	}
}

// setLimit takes the limit an observation says, or, when it says none,
// keeps the known one (raised to a larger remaining: the server's word
// wins) or the unknown one (such a quota is forgotten at its reset).
func (q *Quota) setLimit(oq QuotaObs) {
	switch {
	case oq.Limit > 0:
		q.Limit = oq.Limit
	case q.Limit > 0:
		q.Limit = max(q.Limit, oq.Remaining)
	}
}

// shownQuota is the quota a process remembers: the one in requests, else
// the first.
func (s *State) shownQuota(now int64) (limit, remaining, resetAfter int64) {
	shown := -1
	for i := range s.Quotas {
		if s.Quotas[i].Unit == srl.UnitRequests {
			shown = i
			break
		}
	}
	if shown < 0 && len(s.Quotas) > 0 {
		shown = 0
	}
	if shown < 0 {
		return 0, 0, 0
	}
	q := &s.Quotas[shown]
	return q.Limit, max(q.available(now), 0), q.resetAfter(now)
}

// Seed sets unit's quota (when reset is positive) and extends the block
// from state the shared backend reported, so that a process that loses the
// backend starts from what the fleet last knew. The quota is taken as a
// window of its own: what was left, until reset. It reports whether the
// state changed.
func (s *State) Seed(now int64, unit string, limit, remaining, reset, blockedFor int64) bool {
	before := s.snapshot()
	if reset > 0 {
		if limit > 0 {
			remaining = min(remaining, limit)
		}
		q := Quota{Unit: unit, Limit: limit, Window: reset, ResetAt: now + reset, Seen: remaining, Base: remaining}
		if i := s.quota(unit); i >= 0 {
			q.Window = max(s.Quotas[i].Window, reset)
			s.Quotas[i] = q
		} else if len(s.Quotas) < srl.MaxQuotas {
			s.Quotas = append(s.Quotas, q)
		}
	}
	s.BlockedUntil = max(s.BlockedUntil, now+blockedFor)
	return !s.equals(before)
}
