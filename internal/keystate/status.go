package keystate

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Status builds the public view of the state at now. Default limits are
// left out once a quota is known, as Acquire ignores them then.
func (s *State) Status(now int64, key string, all []Limit, nFixed int) srl.Status {
	st := srl.Status{Key: key}
	bestUse := -1.0
	consider := func(limit, remaining int, reset int64) {
		u := (srl.Status{Limit: limit, Remaining: remaining}).Utilization()
		if limit > 0 && u > bestUse {
			bestUse = u
			st.Limit, st.Remaining, st.ResetAfter = limit, remaining, micros(reset)
		}
	}

	known, qr, qa := s.quota(now)
	if known {
		st.Quota = srl.QuotaStatus{
			Known:      true,
			Limit:      int(s.QuotaLimit),
			Remaining:  int(qr),
			ResetAfter: micros(qa - now),
		}
		consider(st.Quota.Limit, st.Quota.Remaining, qa-now)
	}
	for _, c := range Applicable(all, nFixed, known) {
		debt := max(s.TAT(c)-now, 0)
		spent := FloorDiv(debt+c.Interval-1, c.Interval)
		ls := srl.LimitStatus{
			Limit:      c.Public(),
			Remaining:  int(max(c.Rate-spent, 0)),
			ResetAfter: micros(debt),
		}
		st.Limits = append(st.Limits, ls)
		consider(int(c.Rate), ls.Remaining, debt)
	}
	if s.BlockedUntil > now {
		st.BlockedFor = micros(s.BlockedUntil - now)
	}
	return st
}

func micros(us int64) time.Duration {
	if us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Public converts back to the public form (Period in whole microseconds).
func (l Limit) Public() srl.Limit {
	return srl.Limit{Rate: int(l.Rate), Period: time.Duration(l.Period) * time.Microsecond, Burst: int(l.Burst)}
}

// Decision converts an Acquire result to the public form.
func (r Result) Decision() srl.Decision {
	d := srl.Decision{
		Allowed:    r.Allowed,
		Remaining:  int(r.Remaining),
		ResetAfter: micros(r.ResetAfter),
		Cause:      srl.Cause(r.Cause),
	}
	if r.Allowed {
		d.Delay = micros(r.Wait)
	} else {
		d.RetryAfter = micros(r.Wait)
	}
	if r.QuotaResetAfter > 0 {
		d.Quota = srl.QuotaStatus{Known: true, Limit: int(r.QuotaLimit), Remaining: int(r.QuotaRemaining), ResetAfter: micros(r.QuotaResetAfter)}
	}
	return d
}
