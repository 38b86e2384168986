package keystate

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Status builds the public view of the state at now, without changing it.
// Default limits are left out once a quota is known, as Acquire ignores
// them then.
func (s *State) Status(now int64, key string, all []Limit, nFixed int) srl.Status {
	st := srl.Status{Key: key, Found: s.found()}
	bestUse := -1.0
	consider := func(limit, remaining int, reset int64) {
		u := (srl.Status{Limit: limit, Remaining: remaining}).Utilization()
		if limit > 0 && u > bestUse {
			bestUse = u
			st.Limit, st.Remaining, st.ResetAfter = limit, remaining, micros(reset)
		}
	}

	// Roll a copy: a status changes nothing, and the caller's state may be
	// shared.
	var buf [srl.MaxQuotas]Quota
	view := State{Quotas: buf[:copy(buf[:], s.Quotas)]}
	view.Quotas, _ = rollQuotas(view.Quotas, now)
	for i := range view.Quotas {
		q := &view.Quotas[i]
		qs := srl.QuotaStatus{
			Known:      true,
			Unit:       q.Unit,
			Limit:      int(q.Limit),
			Remaining:  int(max(q.available(now), 0)),
			ResetAfter: micros(q.resetAfter(now)),
		}
		if q.Unit == srl.UnitRequests || !st.Quota.Known {
			st.Quota = qs
		}
		st.Quotas = append(st.Quotas, qs)
		consider(qs.Limit, qs.Remaining, q.resetAfter(now))
	}
	for _, c := range Applicable(all, nFixed, len(view.Quotas) > 0) {
		if c.Kind == KindWindow {
			v := s.windowAt(c, s.findWindow(c), now)
			ls := srl.LimitStatus{
				Limit:      c.Public(),
				Remaining:  int(max(c.Rate-v.Count, 0)),
				ResetAfter: micros(v.resetAfter(c, now)),
			}
			st.Limits = append(st.Limits, ls)
			consider(int(c.Rate), ls.Remaining, v.resetAfter(c, now))
			continue
		}
		debt := clamp(s.TAT(c)-now, 0, c.tatBound())
		spent := FloorDiv(debt+c.Interval-1, c.Interval)
		ls := srl.LimitStatus{
			Limit:      c.Public(),
			Remaining:  int(max(c.Rate-spent, 0)),
			ResetAfter: micros(debt),
		}
		st.Limits = append(st.Limits, ls)
		consider(int(c.Rate), ls.Remaining, debt)
	}
	if b := s.blockedUntil(now); b > now {
		st.BlockedFor = micros(b - now)
	}
	return st
}

// found reports that anything is stored.
func (s *State) found() bool {
	return len(s.TATs) > 0 || len(s.Windows) > 0 || len(s.Quotas) > 0 || s.BlockedUntil > 0 || s.Throttles > 0 || s.ProbeUntil > 0 ||
		s.BareUntil > 0 || s.AdmittedSince > 0
}

func micros(us int64) time.Duration {
	if us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Public converts back to the public form (Period in whole microseconds;
// a window limit with Burst 0, which it ignores).
func (l Limit) Public() srl.Limit {
	p := time.Duration(l.Period) * time.Microsecond
	if l.Kind == KindWindow {
		return srl.Window(int(l.Rate), p)
	}
	return srl.Limit{Rate: int(l.Rate), Period: p, Burst: int(l.Burst)}
}

// Decision converts the Acquire result of it to the public form.
func (r *Result) Decision(it *Item) srl.Decision {
	d := srl.Decision{
		Allowed:    r.Allowed,
		Remaining:  int(r.Remaining),
		ResetAfter: micros(r.ResetAfter),
		Cause:      srl.Cause(r.Cause),
		Report:     r.Report,
		ReportNow:  r.ReportNow,
	}
	if r.Allowed {
		d.Delay = micros(r.Wait)
		d.Charged = []srl.Charge{}
		n := 0
		for _, m := range r.Marks {
			if m > 0 {
				n++
			}
		}
		if n > 0 {
			d.Charged = make([]srl.Charge, 0, n)
			if r.Marks[0] > 0 {
				d.Charged = append(d.Charged, srl.Charge{Unit: srl.UnitRequests, N: int(it.N), Mark: r.Marks[0]})
			}
			for i, c := range it.Costs {
				if i+1 < len(r.Marks) && r.Marks[i+1] > 0 {
					d.Charged = append(d.Charged, srl.Charge{Unit: c.Unit, N: int(c.N), Mark: r.Marks[i+1]})
				}
			}
		}
	} else {
		d.RetryAfter = micros(r.Wait)
	}
	if r.QuotaResetAfter > 0 {
		d.Quota = srl.QuotaStatus{Known: true, Limit: int(r.QuotaLimit), Remaining: int(r.QuotaRemaining), ResetAfter: micros(r.QuotaResetAfter)}
	}
	return d
}
