package smartratelimit

import "time"

// Cause names the dimension of a key's budget that decided an outcome.
type Cause int

const (
	// CauseNone: nothing refused.
	CauseNone Cause = iota
	// CauseLimit: a configured Limit (GCRA pacing).
	CauseLimit
	// CauseQuota: the server's advertised quota is spent until its reset.
	CauseQuota
	// CauseBlocked: a Retry-After (or a bare 429) blocks the key.
	CauseBlocked
	// CauseProbe: another request is probing the server for its quota;
	// retry once its response has been observed (RetryAfter is short).
	CauseProbe
)

// String returns "none", "limit", "quota", "blocked" or "probe".
func (c Cause) String() string {
	switch c {
	case CauseNone:
		return "none"
	case CauseLimit:
		return "limit"
	case CauseQuota:
		return "quota"
	case CauseBlocked:
		return "blocked"
	case CauseProbe:
		return "probe"
	}
	return "unknown"
}

// Decision is the outcome of one admission request.
type Decision struct {
	// Allowed reports that the request was admitted and its cost spent. When
	// Delay is positive the admission is a reservation: the caller holds a
	// slot that starts Delay from now and must wait that long before acting.
	Allowed bool
	// Remaining is how many more units could be admitted at once, the
	// smallest across the key's limits and quota; -1 when nothing limits
	// the key.
	Remaining int
	// RetryAfter is, for a refusal, how long until the request could be
	// admitted at once if nobody else spends meanwhile; 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until every dimension of the key's budget is
	// full again.
	ResetAfter time.Duration
	// Degraded reports that the decision was made without the shared
	// backend (by the in-memory fallback, or by a fail-open policy).
	Degraded bool
	// Delay is the reservation delay of an allowed decision; see Allowed.
	Delay time.Duration
	// Cause says which dimension refused; CauseNone when allowed.
	Cause Cause
	// Quota is the server's quota as the decision saw it, after spending
	// from it: the quota that refused, else the quota in requests, else the
	// first the key has; Known is false while no response has advertised
	// any. A reservation granted while it was unknown did not spend from it.
	Quota QuotaStatus
	// Report asks the caller to observe this request's response even when
	// it carries no rate-limit information (Observation.Bare,
	// Observation.Succeeded): the request holds the key's probe lease, or a
	// streak of refusals is waiting for a success to end it.
	Report bool
	// ReportNow says the fleet waits on that observation (the request
	// holds the probe lease, or a streak of refusals waits for a success):
	// observe the response before the caller moves on. Responses that
	// Report alone (a spend to settle) may be observed later.
	ReportNow bool
	// Charged is, for an allowed request, what it spent from each server
	// quota the key had, requests first; an empty non-nil slice when the
	// key had none; nil for a refusal. Hand it back with the response
	// (Observation.Charged) to settle it.
	Charged []Charge
}

// Status is a read-only view of one key's budget, as every process sharing
// the backend sees it.
type Status struct {
	// Key is the budget's name.
	Key string
	// Limit and Remaining describe the tightest budget: the dimension (the
	// server's quota or one configured limit) with the largest share spent.
	// Both are 0 when nothing limits the key.
	Limit, Remaining int
	// ResetAfter is how long until the tightest budget is full again.
	ResetAfter time.Duration
	// BlockedFor is how long a Retry-After block still lasts; 0 when none.
	BlockedFor time.Duration

	// Quota is the server's advertised budget; Known is false until a
	// response has told us.
	Quota QuotaStatus
	// Limits holds one entry per configured limit that applies to the key,
	// in the order given. Default limits are left out once the quota is
	// known.
	Limits []LimitStatus
	// Quotas holds every server quota the key has, one per unit, requests
	// first; Quota is the one in requests (or the first).
	Quotas []QuotaStatus
	// Found reports that the backend holds state for the key; false means
	// nothing was ever spent or learned for it (or it expired), not that
	// nothing is used.
	Found bool
	// Scopes are the sub-budgets the server named for parts of this key's
	// API (GitHub's "core" and "search"), each under its own key
	// ("api.github.com|core"); httpclient's Transport.Status fills them.
	Scopes []Status
	// Degraded reports that the view comes from the in-memory fallback
	// rather than the shared backend.
	Degraded bool
}

// QuotaStatus is the server's advertised budget for a key, in one unit.
// After the window's reset, until a response tells the truth, Remaining is
// what the fleet may assume: what was left, refilling evenly over the next
// window (never a full refill at once).
type QuotaStatus struct {
	Known      bool
	Unit       string
	Limit      int
	Remaining  int
	ResetAfter time.Duration
}

// LimitStatus is the state of one configured limit. Remaining counts how
// many of the limit's Rate events are still unspent over the sliding
// Period; it is the dashboard view, not the count admissible at once (see
// Decision.Remaining for that).
type LimitStatus struct {
	Limit      Limit
	Remaining  int
	ResetAfter time.Duration
}

// Utilization returns the share of the tightest budget already spent, from
// 0 (untouched or unlimited) to 1 (exhausted, or blocked by Retry-After).
// Every quota counts (Quotas) and every scope (Scopes), so for an LLM API
// the most used of requests and tokens decides.
func (s Status) Utilization() float64 {
	if s.BlockedFor > 0 {
		return 1
	}
	u := 0.0
	if s.Limit > 0 {
		u = utilization(s.Limit, s.Remaining)
	}
	for _, q := range s.Quotas {
		if q.Known && q.Limit > 0 {
			u = max(u, utilization(q.Limit, q.Remaining))
		}
	}
	for _, sc := range s.Scopes {
		u = max(u, sc.Utilization())
	}
	return u
}

func utilization(limit, remaining int) float64 {
	if limit <= 0 {
		return 0
	}
	u := 1 - float64(remaining)/float64(limit)
	switch {
	case u < 0:
		return 0
	case u > 1:
		return 1
	}
	return u
}
