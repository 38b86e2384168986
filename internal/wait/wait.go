// Package wait turns a Backend's admission decisions into a blocking wait,
// the same way for every backend: reservations are slept exactly, refusals
// by a server quota or a Retry-After block are slept with jitter so a
// fleet does not stampede at a reset, and a wait that cannot end before the
// context's deadline fails at once instead of sleeping first.
package wait

import (
	"context"
	"math/rand/v2"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// MaxReservation bounds one reservation when nothing else bounds the wait:
// a caller that gives up mid-wait wastes at most this much of the budget.
const MaxReservation = time.Minute

// MaxJitter bounds the jitter added to a quota or block wait.
const MaxJitter = time.Second

// QuotaPoll bounds one sleep on a spent server quota: the fleet learns a
// window's end from responses (a server whose window rolled before the
// time its whole-second headers allowed us to assume), so a waiter looks
// again at least this often instead of sleeping out the assumed reset.
// (With Redis, the repeated look is usually answered by the process's
// refusal cache, without a round trip.)
const QuotaPoll = 250 * time.Millisecond

// SendMargin is kept free before a context's deadline: a wait that would
// end closer to it than this fails fast, because what it admitted could no
// longer be sent in time (the sleep's timer and the deadline's fire
// together, and either may win), and a refused request wakes with at
// least this much left to look again. 5 ms was too little on a loaded
// machine: in the integration fleet (hundreds of waiters on two cores,
// woken together at a window's edge) a request admitted in the last
// milliseconds sometimes reached its connection only after the deadline.
const SendMargin = 20 * time.Millisecond

// Acquirer decides admission; every Backend is one.
type Acquirer interface {
	Acquire(ctx context.Context, r srl.Request) (srl.Decision, error)
}

// Sleeper waits d or until ctx ends, returning ctx's error in that case.
type Sleeper func(ctx context.Context, d time.Duration) error

// Sleep is the real Sleeper.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// For blocks until r is admitted and returns the admitting decision. The
// wait is bounded by ctx's deadline and, when positive, by r.MaxWait; when
// the backend says the request cannot be admitted within that bound, For
// returns a *smartratelimit.LimitError with Deadline set at once, without
// sleeping. A reservation is slept in full; when ctx ends during it, the
// reserved slot is spent and ctx's error returned. A reservation granted
// before the server's quota was known did not spend from it, so after the
// sleep the quota and any block are checked again (the fleet may have
// learned both meanwhile).
func For(ctx context.Context, b Acquirer, r srl.Request, sleep Sleeper, now func() time.Time) (srl.Decision, error) {
	d, _, err := ForSlept(ctx, b, r, sleep, now)
	return d, err
}

// ForSlept is For that also reports how long it slept in all.
func ForSlept(ctx context.Context, b Acquirer, r srl.Request, sleep Sleeper, now func() time.Time) (d srl.Decision, slept time.Duration, err error) {
	inner := sleep
	sleep = func(ctx context.Context, dur time.Duration) error {
		if dur <= 0 {
			return inner(ctx, dur)
		}
		start := now()
		err := inner(ctx, dur)
		slept += now().Sub(start)
		return err
	}
	d, err = forLoop(ctx, b, r, sleep, now)
	return d, slept, err
}

func forLoop(ctx context.Context, b Acquirer, r srl.Request, sleep Sleeper, now func() time.Time) (srl.Decision, error) {
	start := now()
	for {
		if err := ctx.Err(); err != nil {
			return srl.Decision{}, err
		}
		bound, bounded := remaining(ctx, r.MaxWait, start, now)
		q := r
		q.MaxWait = MaxReservation
		if bounded {
			q.MaxWait = min(MaxReservation, bound)
		}
		d, err := b.Acquire(ctx, q)
		if err != nil {
			return d, err
		}
		if d.Allowed {
			if d.Delay <= 0 || d.Quota.Known || len(r.Limits)+len(r.DefaultLimits) == 0 {
				return d, sleep(ctx, d.Delay)
			}
			if err := sleep(ctx, d.Delay); err != nil {
				return d, err
			}
			// The limits are spent; from here on only the quota and blocks.
			r.Limits, r.DefaultLimits = nil, nil
			continue
		}
		if bounded && d.RetryAfter > bound {
			return d, &srl.LimitError{Key: r.Key, RetryAfter: d.RetryAfter, Cause: d.Cause, Deadline: true}
		}
		pause := d.RetryAfter
		switch {
		case d.Cause == srl.CauseLimit && d.RetryAfter > q.MaxWait:
			// Sleep only until the wait fits in a reservation.
			pause = max(d.RetryAfter-q.MaxWait, time.Millisecond)
		case d.Cause == srl.CauseLimit:
			// A limit that cannot reserve (a window): sleep it out.
		case d.Cause == srl.CauseQuota && pause > QuotaPoll:
			// Spread over a quarter of the interval, so a fleet's
			// waiters do not look again in step.
			pause = QuotaPoll + jitter(10*QuotaPoll/4, bound-QuotaPoll, bounded)
		default:
			pause += jitter(d.RetryAfter, bound-d.RetryAfter, bounded)
		}
		if bounded && pause >= bound {
			// The refusal still stands and looking again would be past the
			// bound: fail now, not at the deadline.
			return d, &srl.LimitError{Key: r.Key, RetryAfter: d.RetryAfter, Cause: d.Cause, Deadline: true}
		}
		if err := sleep(ctx, pause); err != nil {
			return d, err
		}
	}
}

// remaining is what is left of the wait's bound, if it has one.
func remaining(ctx context.Context, maxWait time.Duration, start time.Time, now func() time.Time) (time.Duration, bool) {
	bound, bounded := time.Duration(0), false
	if maxWait > 0 {
		bound, bounded = max(maxWait-now().Sub(start), 0), true
	}
	if dl, ok := ctx.Deadline(); ok {
		left := max(dl.Sub(now())-SendMargin, 0)
		if !bounded || left < bound {
			bound, bounded = left, true
		}
	}
	return bound, bounded
}

// jitter is a random extra pause of up to a tenth of the wait, at most
// MaxJitter, never past the bound.
func jitter(wait, slack time.Duration, bounded bool) time.Duration {
	span := min(wait/10, MaxJitter)
	if bounded {
		span = min(span, slack)
	}
	if span <= 0 {
		return 0
	}
	return rand.N(span + 1)
}
