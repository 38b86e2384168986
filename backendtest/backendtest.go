// Package backendtest is the conformance suite every smartratelimit.Backend
// must pass: the Redis scripts (on miniredis and on real Redis) and the
// in-memory twin run the same operations under the same simulated clock
// and must give the same replies.
//
// A backend's tests call Run with a Factory that builds a fresh, empty
// backend wired to the suite's Clock:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
//			return backendtest.Harness{Backend: newBackend(clock.Now)}
//		})
//	}
//
// The backend must use the default throttle backoff (1s doubling to 1m).
package backendtest

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Harness is one backend under test.
type Harness struct {
	Backend srl.Backend
	// TTL reports how long the stored state of key will live, and whether
	// it exists. Nil skips the expiry checks.
	TTL func(key string) (time.Duration, bool)
	// LimitFields reports how many limit fields (pacing TATs and window
	// counts) the stored state of key holds; see LimitFieldsOf for a Redis
	// hash. Nil skips the check of their bound.
	LimitFields func(key string) int
}

// Factory builds a fresh, empty backend whose time is clock. It is called
// once or more per test; two calls in one test must not share state.
type Factory func(t *testing.T, clock *Clock) Harness

// Grace is how long state outlives its horizon at least; a backend may keep
// it up to 2×Grace (the Redis store extends its TTL in steps of Grace).
const Grace = time.Second

// Run runs the whole suite against the backend that newHarness builds.
func Run(t *testing.T, newHarness Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"AdmissionCounts", testAdmissionCounts},
		{"BurstBound", testBurstBound},
		{"RetryAfterIsExact", testRetryAfterExact},
		{"AllOrNothing", testAllOrNothing},
		{"Reservation", testReservation},
		{"Quota", testQuota},
		{"QuotaWindowRollover", testQuotaWindowRollover},
		{"OutOfOrderObserve", testOutOfOrderObserve},
		{"ObserveManyIsObserveInTurn", testObserveMany},
		{"RetryAfterBlocks", testRetryAfterBlocks},
		{"ThrottleBackoff", testThrottleBackoff},
		{"RefusalWithQuota", testRefusalWithQuota},
		{"NewerResponsesWin", testNewerResponsesWin},
		{"Probe", testProbe},
		{"QuotasPerUnit", testQuotasPerUnit},
		{"ClockStep", testClockStep},
		{"InFlight", testInFlight},
		{"SettlesEstimates", testSettlesEstimates},
		{"InferredQuota", testInferredQuota},
		{"DefaultLimits", testDefaultLimits},
		{"TTLOnEveryWrite", testTTL},
		{"TTLKeepsAheadOfTheHorizon", testTTLKeepsAhead},
		{"PeekChangesNothing", testPeekChangesNothing},
		{"BadInput", testBadInput},
		{"GarbageCannotPoison", testGarbageCannotPoison},
		{"ClockJumps", testClockJumps},
		{"Unlimited", testUnlimited},
		{"Reset", testReset},
		{"KeysAreIndependent", testKeysIndependent},
		{"ConcurrentExactBudget", testConcurrentExactBudget},
		{"WindowBound", testWindowBound},
		{"WindowBurst", testWindowBurst},
		{"WindowRetryAfterIsExact", testWindowRetryAfterExact},
		{"WindowAllOrNothing", testWindowAllOrNothing},
		{"WindowStatus", testWindowStatus},
		{"WindowTTL", testWindowTTL},
		{"WindowDefaults", testWindowDefaults},
		{"LimitFieldsBounded", testLimitFieldsBounded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newHarness) })
	}
}

// env is one harness plus its clock, with fatal-on-error helpers.
type env struct {
	t     *testing.T
	h     Harness
	clock *Clock
}

func newEnv(t *testing.T, f Factory) *env {
	t.Helper()
	clock := NewClock(Epoch)
	return &env{t: t, h: f(t, clock), clock: clock}
}

// at sets the clock to Epoch + d.
func (e *env) at(d time.Duration) { e.clock.Set(Epoch.Add(d)) }

func (e *env) acquire(r srl.Request) srl.Decision {
	e.t.Helper()
	if r.N == 0 {
		r.N = 1
	}
	d, err := e.h.Backend.Acquire(context.Background(), r)
	if err != nil {
		e.t.Fatalf("Acquire(%+v) at %v: %v", r, e.clock.Now().Sub(Epoch), err)
	}
	if d.RetryAfter < 0 || d.Delay < 0 || d.ResetAfter < 0 {
		e.t.Fatalf("Acquire(%+v) = %+v: negative duration", r, d)
	}
	return d
}

func (e *env) allow(key string, limits ...srl.Limit) srl.Decision {
	e.t.Helper()
	return e.acquire(srl.Request{Key: key, N: 1, Limits: limits})
}

func (e *env) observe(key string, o srl.Observation) {
	e.t.Helper()
	if err := e.h.Backend.Observe(context.Background(), key, o); err != nil {
		e.t.Fatalf("Observe(%q, %+v): %v", key, o, err)
	}
}

func (e *env) peek(key string, limits ...srl.Limit) srl.Status {
	e.t.Helper()
	st, err := e.h.Backend.Peek(context.Background(), srl.Request{Key: key, Limits: limits})
	if err != nil {
		e.t.Fatalf("Peek(%q): %v", key, err)
	}
	return st
}

func (e *env) wantDecision(step string, got srl.Decision, allowed bool, wait time.Duration, cause srl.Cause) {
	e.t.Helper()
	gotWait := got.RetryAfter
	if got.Allowed {
		gotWait = got.Delay
	}
	if got.Allowed != allowed || gotWait != wait || got.Cause != cause {
		e.t.Errorf("%s: got allowed=%v wait=%v cause=%v, want allowed=%v wait=%v cause=%v (%+v)",
			step, got.Allowed, gotWait, got.Cause, allowed, wait, cause, got)
	}
}

func testAdmissionCounts(t *testing.T, f Factory) {
	tests := []struct {
		name      string
		limits    []srl.Limit
		step, dur time.Duration
		want      int
	}{
		// One admission every 100ms from t=0: 0, 100, …, 900ms.
		{"10/s paced", []srl.Limit{srl.PerSecond(10)}, time.Millisecond, time.Second, 10},
		// The burst of 5 at once, then one per 100ms from 100ms to 900ms:
		// Rate + Burst − 1 = 14.
		{"10/s burst 5", []srl.Limit{srl.PerSecond(10).WithBurst(5)}, time.Millisecond, time.Second, 14},
		{"60/min", []srl.Limit{srl.PerMinute(60)}, 250 * time.Millisecond, time.Minute, 60},
		// A late arrival restarts the pacing from its own time: T = 3.33…s,
		// so with 1s steps admissions fall at 0, 4, 8, …, 28s.
		{"3/10s late arrivals", []srl.Limit{srl.Every(3, 10*time.Second)}, time.Second, 30 * time.Second, 8},
		// The per-minute limit (T=3s) dominates: 0, 3, 6, 9s.
		{"5/s and 20/min", []srl.Limit{srl.PerSecond(5), srl.PerMinute(20)}, 10 * time.Millisecond, 10 * time.Second, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, f)
			got := 0
			for at := time.Duration(0); at < tc.dur; at += tc.step {
				e.at(at)
				if e.allow("counts", tc.limits...).Allowed {
					got++
				}
			}
			if got != tc.want {
				t.Errorf("admitted %d, want %d", got, tc.want)
			}
		})
	}
}

// testBurstBound drives each limit with random arrivals denser than its
// rate and checks both ways: never more than Rate + Burst − 1 in any
// window of one Period, and never starved below the arrivals' lag.
func testBurstBound(t *testing.T, f Factory) {
	limits := []srl.Limit{
		srl.PerSecond(10).WithBurst(4),
		srl.PerMinute(30).WithBurst(10),
		srl.Every(7, 3*time.Second).WithBurst(3),
		srl.PerSecond(3),
	}
	for i, l := range limits {
		t.Run(l.String(), func(t *testing.T) {
			e := newEnv(t, f)
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			interval := time.Duration(l.IntervalMicros()) * time.Microsecond
			maxGap := interval / 2
			dur := 5 * l.Period
			var admitted []time.Duration
			for at := time.Duration(0); at < dur; at += time.Duration(rng.Int64N(int64(maxGap))) + time.Microsecond {
				e.at(at)
				if e.allow("bound", l).Allowed {
					admitted = append(admitted, at)
				}
			}
			bound := l.Rate + l.EffectiveBurst() - 1
			for i, start := range admitted {
				n := 0
				for _, a := range admitted[i:] {
					if a >= start+l.Period {
						break
					}
					n++
				}
				if n > bound {
					t.Fatalf("%d admissions in [%v, %v), bound %d", n, start, start+l.Period, bound)
				}
			}
			if floor := int(dur / (interval + maxGap)); len(admitted) < floor {
				t.Errorf("admitted %d over %v, want at least %d", len(admitted), dur, floor)
			}
		})
	}
}

// testRetryAfterExact retries exactly when each refusal says. The caller
// then gets every slot: the burst at once and one per emission interval,
// which must come to exactly Rate per Period plus Burst − 1 — and never
// more, which T rounded down to a microsecond would break (3/10s would
// admit a fourth at 9.999999s).
func testRetryAfterExact(t *testing.T, f Factory) {
	limits := []srl.Limit{srl.Every(3, 10*time.Second), srl.PerSecond(7), srl.PerMinute(60).WithBurst(10)}
	for _, l := range limits {
		t.Run(l.String(), func(t *testing.T) {
			e := newEnv(t, f)
			end := Epoch.Add(3 * l.Period)
			admitted := 0
			for e.clock.Now().Before(end) {
				d := e.allow("exact", l)
				if d.Allowed {
					admitted++
					continue
				}
				if d.RetryAfter <= 0 {
					t.Fatalf("refusal without a retry time: %+v", d)
				}
				e.clock.Advance(d.RetryAfter)
			}
			if want := 3*l.Rate + l.EffectiveBurst() - 1; admitted != want {
				t.Fatalf("admitted %d in three periods, want %d", admitted, want)
			}
		})
	}
}

func testAllOrNothing(t *testing.T, f Factory) {
	e := newEnv(t, f)
	perSec := srl.PerSecond(1)
	perMin := srl.PerMinute(3).WithBurst(3)
	e.wantDecision("first", e.allow("aon", perSec, perMin), true, 0, srl.CauseNone)
	remaining := func() int { return e.peek("aon", perSec, perMin).Limits[1].Remaining }
	if got := remaining(); got != 2 {
		t.Fatalf("per-minute remaining after one admission = %d, want 2", got)
	}
	e.at(500 * time.Millisecond)
	e.wantDecision("per-second refuses", e.allow("aon", perSec, perMin), false, 500*time.Millisecond, srl.CauseLimit)
	if got := remaining(); got != 2 {
		t.Fatalf("a refusal by the per-second limit spent the per-minute one: remaining %d, want 2", got)
	}
	e.at(time.Second)
	e.wantDecision("second", e.allow("aon", perSec, perMin), true, 0, srl.CauseNone)
	e.at(2 * time.Second)
	e.wantDecision("third", e.allow("aon", perSec, perMin), true, 0, srl.CauseNone)
	// The per-minute burst of 3 is spent; its next slot is at 20s.
	e.at(3 * time.Second)
	before := e.peek("aon", perSec, perMin).Limits[0]
	e.wantDecision("per-minute refuses", e.allow("aon", perSec, perMin), false, 17*time.Second, srl.CauseLimit)
	if after := e.peek("aon", perSec, perMin).Limits[0]; after != before {
		t.Fatalf("a refusal by the per-minute limit spent the per-second one: %+v, then %+v", before, after)
	}
}

func testReservation(t *testing.T, f Factory) {
	e := newEnv(t, f)
	r := srl.Request{Key: "resv", N: 1, Limits: []srl.Limit{srl.PerSecond(10)}, MaxWait: 250 * time.Millisecond}
	for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond} {
		d := e.acquire(r)
		e.wantDecision("reservation "+string(rune('0'+i)), d, true, want, srl.CauseNone)
	}
	e.wantDecision("past max wait", e.acquire(r), false, 300*time.Millisecond, srl.CauseLimit)
	e.at(50 * time.Millisecond)
	e.wantDecision("refusal spent nothing", e.acquire(r), true, 250*time.Millisecond, srl.CauseNone)
	// A block is never reserved, however long the max wait.
	e.observe("resv", srl.Observation{RetryAfter: 100 * time.Millisecond})
	r.MaxWait = time.Hour
	// Here the pending reservations reach further (350ms) than the block.
	e.wantDecision("blocked", e.acquire(r), false, 350*time.Millisecond, srl.CauseLimit)
}

func testQuota(t *testing.T, f Factory) {
	e := newEnv(t, f)
	e.observe("q", srl.Observation{Limit: 5, Remaining: 2, Reset: 10 * time.Second})
	for want := 1; want >= 0; want-- {
		d := e.allow("q")
		if !d.Allowed || d.Remaining != want {
			t.Fatalf("quota admission: %+v, want allowed with remaining %d", d, want)
		}
	}
	e.wantDecision("quota spent", e.allow("q"), false, 10*time.Second, srl.CauseQuota)
	st := e.peek("q")
	if !st.Quota.Known || st.Quota.Limit != 5 || st.Quota.Remaining != 0 || st.Quota.ResetAfter != 10*time.Second || st.Utilization() != 1 {
		t.Fatalf("status of a spent quota: %+v (utilization %v)", st, st.Utilization())
	}
	// After the reset nothing is assumed: the next window ramps from what
	// was left (nothing) to one below the limit (4) over the window's
	// length (the longest reset seen: 10s), one unit every 2s (a window's
	// gain plus one, so that the last comes before the window ends), each
	// rounded up to the ramp's next step (4096 a window).
	e.at(10 * time.Second)
	e.wantDecision("the reset is not a refill", e.allow("q"), false, 2001954*time.Microsecond, srl.CauseQuota)
	e.at(12500 * time.Millisecond)
	e.wantDecision("the ramp's first unit", e.allow("q"), true, 0, srl.CauseNone)
	e.wantDecision("the ramp's next unit", e.allow("q"), false, 1501465*time.Microsecond, srl.CauseQuota)
	// The first response of the new window tells the truth: 4 left.
	e.observe("q", srl.Observation{Limit: 5, Remaining: 4, Reset: 7500 * time.Millisecond})
	for i := 0; i < 4; i++ {
		if d := e.allow("q"); !d.Allowed {
			t.Fatalf("admission %d of what the response said: %+v", i, d)
		}
	}
	e.wantDecision("the new window spent", e.allow("q"), false, 7500*time.Millisecond, srl.CauseQuota)
}

func testQuotaWindowRollover(t *testing.T, f Factory) {
	e := newEnv(t, f)
	e.observe("w", srl.Observation{Limit: 10, Remaining: 0, Reset: 5 * time.Second, Window: time.Minute})
	e.wantDecision("spent", e.allow("w"), false, 5*time.Second, srl.CauseQuota)
	// The next window (a minute, as the server said) ramps to 9 at the
	// rate of 10 a window: the first unit after 4096 steps × 1/10, rounded
	// up to the next step.
	e.at(5 * time.Second)
	e.wantDecision("ramping", e.allow("w"), false, 6005860*time.Microsecond, srl.CauseQuota)
	e.at(5*time.Second + 30*time.Second)
	if st := e.peek("w"); st.Quota.Remaining != 5 || st.Quota.ResetAfter != 30*time.Second {
		t.Fatalf("half way through the ramp: %+v, want 5 remaining, reset after 30s", st.Quota)
	}
	// A window on, untouched: the ramp reached its target, and the next
	// window starts there. (The state lives until that window's end.)
	e.at(5*time.Second + time.Minute + 500*time.Millisecond)
	if st := e.peek("w"); st.Quota.Remaining != 9 || st.Quota.ResetAfter != 59500*time.Millisecond {
		t.Fatalf("quota a window on: %+v, want 9 remaining, reset after 59.5s", st.Quota)
	}
	for i := 0; i < 9; i++ {
		if d := e.allow("w"); !d.Allowed {
			t.Fatalf("admission %d of the refilled window: %+v", i, d)
		}
	}
	e.wantDecision("refilled window spent", e.allow("w"), false, 59500*time.Millisecond, srl.CauseQuota)
}

func testOutOfOrderObserve(t *testing.T, f Factory) {
	e := newEnv(t, f)
	remaining := func() int { return e.peek("ooo").Quota.Remaining }
	e.observe("ooo", srl.Observation{Limit: 100, Remaining: 50, Reset: 30 * time.Second})
	for i := 0; i < 3; i++ {
		e.allow("ooo")
	}
	steps := []struct {
		name string
		at   time.Duration
		o    srl.Observation
		want int
	}{
		{"a response sent before our three spends", 0, srl.Observation{Limit: 100, Remaining: 49, Reset: 30 * time.Second}, 47},
		{"a late response with more remaining", 0, srl.Observation{Limit: 100, Remaining: 80, Reset: 29500 * time.Millisecond}, 47},
		{"a lower remaining in the same window", 0, srl.Observation{Limit: 100, Remaining: 40, Reset: 29800 * time.Millisecond}, 40},
		{"a newer window replaces", 31 * time.Second, srl.Observation{Limit: 100, Remaining: 99, Reset: time.Minute}, 99},
		{"a late response from the old window", 31 * time.Second, srl.Observation{Limit: 100, Remaining: 10, Reset: 500 * time.Millisecond}, 99},
		{"remaining above limit is clamped", 31 * time.Second, srl.Observation{Limit: 100, Remaining: 120, Reset: time.Minute}, 99},
	}
	for _, s := range steps {
		e.at(s.at)
		e.observe("ooo", s.o)
		if got := remaining(); got != s.want {
			t.Fatalf("%s: remaining %d, want %d", s.name, got, s.want)
		}
	}
}

// testObserveMany stores one sequence of responses on two keys, one at a
// time on the first and in one ObserveMany on the second: settled spends,
// a late response, a refusal with Retry-After, an invalid observation and
// a new window. Both keys must end alike.
func testObserveMany(t *testing.T, f Factory) {
	e := newEnv(t, f)
	ctx := context.Background()
	date := Epoch.Add(time.Second)
	tokens := func(left int, reset time.Duration) srl.Observation {
		return srl.Observation{Date: date, Limit: 100, Remaining: left / 40, Reset: reset, Succeeded: true,
			Quotas: []srl.QuotaObservation{{Unit: srl.UnitTokens, Limit: 4000, Remaining: left, Reset: reset}}}
	}
	var batch [2][]srl.Observation
	for k, key := range []string{"one-by-one", "many"} {
		e.observe(key, tokens(4000, 30*time.Second))
		for i := 1; i <= 3; i++ {
			d := e.acquire(srl.Request{Key: key, N: 1, Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 400}}})
			if !d.Allowed {
				t.Fatalf("%s: spend %d refused: %+v", key, i, d)
			}
			o := tokens(4000-250*i, 30*time.Second-time.Duration(i)*time.Millisecond)
			o.Charged = d.Charged
			batch[k] = append(batch[k], o)
		}
		batch[k] = append(batch[k],
			tokens(3900, 29*time.Second),
			srl.Observation{Remaining: -1, Limit: 100},
			srl.Observation{Limited: true, RetryAfter: 2 * time.Second, Date: date},
			tokens(3999, 90*time.Second))
	}
	var errs [2]error
	for _, o := range batch[0] {
		errs[0] = errors.Join(errs[0], e.h.Backend.Observe(ctx, "one-by-one", o))
	}
	errs[1] = srl.ObserveMany(ctx, e.h.Backend, "many", batch[1])
	for k, err := range errs {
		if !errors.Is(err, srl.ErrInvalidObservation) {
			t.Fatalf("key %d: error %v, want the invalid observation named", k, err)
		}
	}
	one, many := e.peek("one-by-one"), e.peek("many")
	one.Key, many.Key = "", ""
	if !reflect.DeepEqual(one, many) {
		t.Fatalf("ObserveMany differs from Observe in turn:\n one by one %+v\n many       %+v", one, many)
	}
	if one.BlockedFor <= 0 || len(one.Quotas) < 2 {
		t.Fatalf("the sequence left no block or no quotas: %+v", one)
	}
	for _, key := range []string{"one-by-one", "many"} {
		e.at(3 * time.Second)
		if d := e.acquire(srl.Request{Key: key, N: 1, Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 400}}}); !d.Allowed {
			t.Fatalf("%s: refused after the block: %+v", key, d)
		}
		e.at(0)
	}
}

func testRetryAfterBlocks(t *testing.T, f Factory) {
	e := newEnv(t, f)
	e.observe("ra", srl.Observation{RetryAfter: 5 * time.Second, Limited: true})
	e.wantDecision("blocked", e.allow("ra"), false, 5*time.Second, srl.CauseBlocked)
	if st := e.peek("ra"); st.BlockedFor != 5*time.Second || st.Utilization() != 1 {
		t.Fatalf("status while blocked: %+v", st)
	}
	e.at(4900 * time.Millisecond)
	e.wantDecision("still blocked", e.allow("ra"), false, 100*time.Millisecond, srl.CauseBlocked)
	// A shorter Retry-After never shortens a block.
	e.observe("ra", srl.Observation{RetryAfter: 10 * time.Millisecond})
	e.at(5 * time.Second)
	e.wantDecision("block over", e.allow("ra"), true, 0, srl.CauseNone)
}

func testThrottleBackoff(t *testing.T, f Factory) {
	e := newEnv(t, f)
	bare := srl.Observation{Limited: true}
	steps := []struct {
		at    time.Duration
		o     srl.Observation
		block time.Duration
	}{
		{0, bare, time.Second},
		{time.Second, bare, 2 * time.Second},
		{3 * time.Second, bare, 4 * time.Second},
		// Refusals of requests sent before the block arrive while it is in
		// force: one refusal, not many.
		{3500 * time.Millisecond, bare, 3500 * time.Millisecond},
		{6 * time.Second, bare, time.Second},
		// Any success ends the streak, with or without rate-limit headers.
		{7 * time.Second, srl.Observation{Succeeded: true}, 0},
		{7 * time.Second, bare, time.Second},
		{8 * time.Second, bare, 2 * time.Second},
		{10 * time.Second, srl.Observation{Limit: 10, Remaining: 5, Reset: time.Second, Succeeded: true}, 0},
		{10 * time.Second, bare, time.Second},
		// A response that is neither (a 500) leaves the streak as it is.
		{11 * time.Second, srl.Observation{Limit: 10, Remaining: 5, Reset: time.Second}, 0},
		{11 * time.Second, bare, 2 * time.Second},
		// More than the maximum backoff after the last block: a new streak.
		{75 * time.Second, bare, time.Second},
	}
	for i, s := range steps {
		e.at(s.at)
		e.observe("bo", s.o)
		if got := e.peek("bo").BlockedFor; got != s.block {
			t.Fatalf("step %d at %v: blocked for %v, want %v", i, s.at, got, s.block)
		}
	}
}

// testRefusalWithQuota: a refusal that carries the spent quota (a 429, or
// GitHub's 403, with remaining 0 and a reset) holds the key until that
// reset, not for a backoff, however many arrive.
func testRefusalWithQuota(t *testing.T, f Factory) {
	e := newEnv(t, f)
	for i := 0; i < 8; i++ {
		e.observe("rq", srl.Observation{Limited: true, Limit: 10, Remaining: 0, Reset: 2 * time.Second})
	}
	if st := e.peek("rq"); st.BlockedFor != 0 || st.Quota.Remaining != 0 || st.Quota.ResetAfter != 2*time.Second {
		t.Fatalf("after 8 refusals with the quota: %+v, want no block and a spent quota", st)
	}
	e.wantDecision("held by the quota", e.allow("rq"), false, 2*time.Second, srl.CauseQuota)
	// The streak did not move: a later bare refusal starts at the base.
	e.at(10 * time.Second)
	e.observe("rq", srl.Observation{Limited: true})
	if got := e.peek("rq").BlockedFor; got != time.Second {
		t.Fatalf("a bare refusal after refusals with the quota blocks for %v, want 1s", got)
	}
}

// testNewerResponsesWin: observations are ordered by the server's Date, so
// one outlier cannot hold a key against what later responses say, while a
// response of the same window from an earlier second never raises it.
func testNewerResponsesWin(t *testing.T, f Factory) {
	e := newEnv(t, f)
	date := func(s int) time.Time { return Epoch.Add(time.Duration(s) * time.Second) }
	e.observe("nd", srl.Observation{Limit: 100, Remaining: 100, Reset: time.Minute, Date: date(0)})
	e.at(time.Second)
	e.observe("nd", srl.Observation{Limit: 100, Remaining: 3, Reset: 24 * time.Hour, Date: date(1)})
	if st := e.peek("nd"); st.Quota.Remaining != 3 {
		t.Fatalf("after the outlier: %+v", st.Quota)
	}
	e.at(2 * time.Second)
	for i := 0; i < 3; i++ {
		e.observe("nd", srl.Observation{Limit: 100, Remaining: 95, Reset: 58 * time.Second, Date: date(2)})
	}
	if st := e.peek("nd"); st.Quota.Remaining != 95 || st.Quota.ResetAfter != 58*time.Second {
		t.Fatalf("after the truthful responses: %+v, want 95 left, reset after 58s", st.Quota)
	}
	e.wantDecision("admitted again", e.allow("nd"), true, 0, srl.CauseNone)
	steps := []struct {
		name string
		o    srl.Observation
		want int
	}{
		{"a late response of the same window", srl.Observation{Limit: 100, Remaining: 97, Reset: 58 * time.Second, Date: date(1)}, 94},
		{"a response of the same second with more", srl.Observation{Limit: 100, Remaining: 96, Reset: 58 * time.Second, Date: date(2)}, 94},
		{"a late outlier", srl.Observation{Limit: 100, Remaining: 1, Reset: 20 * time.Hour, Date: date(1)}, 94},
		{"a lower one of the same window", srl.Observation{Limit: 100, Remaining: 90, Reset: 58 * time.Second, Date: date(1)}, 90},
	}
	for _, s := range steps {
		e.observe("nd", s.o)
		if got := e.peek("nd").Quota.Remaining; got != s.want {
			t.Fatalf("%s: remaining %d, want %d", s.name, got, s.want)
		}
	}
}

// testProbe: with Request.Probe, a key whose quota is unknown sends one
// request first and holds the others until its response is observed.
func testProbe(t *testing.T, f Factory) {
	e := newEnv(t, f)
	probe := srl.Request{Key: "pr", N: 1, Probe: time.Second}
	d := e.acquire(probe)
	if !d.Allowed || !d.Report {
		t.Fatalf("the first request must go as the probe: %+v", d)
	}
	e.wantDecision("held for the probe", e.acquire(probe), false, 20*time.Millisecond, srl.CauseProbe)
	e.at(500 * time.Millisecond)
	e.observe("pr", srl.Observation{Limit: 10, Remaining: 9, Reset: 2 * time.Second, Succeeded: true})
	for i := 0; i < 9; i++ {
		if d := e.acquire(probe); !d.Allowed {
			t.Fatalf("admission %d after the probe: %+v", i, d)
		}
	}
	e.wantDecision("quota spent", e.acquire(probe), false, 2*time.Second, srl.CauseQuota)
	// After the reset the window is only assumed: one probe again, as soon
	// as the ramp allows one unit.
	e.at(2500*time.Millisecond + 2*time.Second/9 + time.Millisecond)
	if d := e.acquire(probe); !d.Allowed || !d.Report {
		t.Fatalf("the first request after the reset must probe: %+v", d)
	}
	if d := e.acquire(probe); d.Allowed || d.Cause != srl.CauseProbe && d.Cause != srl.CauseQuota {
		t.Fatalf("a second request while the probe is out: %+v", d)
	}

	// A lease that ends without an observation lets the others go.
	e.at(0)
	e.acquire(srl.Request{Key: "slow", N: 1, Probe: 100 * time.Millisecond})
	e.at(100 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if d := e.acquire(srl.Request{Key: "slow", N: 1, Probe: 100 * time.Millisecond}); !d.Allowed || d.Report {
			t.Fatalf("admission %d after the lease ended: %+v", i, d)
		}
	}

	// A probe answered without any rate-limit header: no more probing.
	e.acquire(srl.Request{Key: "bare", N: 1, Probe: time.Second})
	e.observe("bare", srl.Observation{Bare: true, Succeeded: true})
	for i := 0; i < 3; i++ {
		if d := e.acquire(srl.Request{Key: "bare", N: 1, Probe: time.Second}); !d.Allowed || d.Report {
			t.Fatalf("admission %d after a bare probe response: %+v", i, d)
		}
	}

	// Default limits stand in for the unknown quota: no probe.
	def := srl.Request{Key: "def", N: 1, Probe: time.Second, DefaultLimits: []srl.Limit{srl.PerSecond(100).WithBurst(5)}}
	for i := 0; i < 3; i++ {
		if d := e.acquire(def); !d.Allowed || d.Report {
			t.Fatalf("admission %d under default limits: %+v", i, d)
		}
	}
}

// testQuotasPerUnit: one decision checks every unit's quota and spends
// from all of them or none.
func testQuotasPerUnit(t *testing.T, f Factory) {
	e := newEnv(t, f)
	e.observe("llm", srl.Observation{Limit: 10, Remaining: 10, Reset: time.Minute,
		Quotas: []srl.QuotaObservation{{Unit: srl.UnitTokens, Limit: 1000, Remaining: 100, Reset: 30 * time.Second}}})
	big := srl.Request{Key: "llm", N: 1, Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 150}}}
	e.wantDecision("too many tokens", e.acquire(big), false, 30*time.Second, srl.CauseQuota)
	small := srl.Request{Key: "llm", N: 1, Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 60}}}
	e.wantDecision("within both", e.acquire(small), true, 0, srl.CauseNone)
	st := e.peek("llm")
	if len(st.Quotas) != 2 || st.Quota.Unit != srl.UnitRequests || st.Quota.Remaining != 9 ||
		st.Quotas[1].Unit != srl.UnitTokens || st.Quotas[1].Remaining != 40 {
		t.Fatalf("status after one request: %+v", st)
	}
	if u := st.Utilization(); u != 0.96 {
		t.Fatalf("utilization %v, want the tokens' 0.96", u)
	}
	e.wantDecision("the refused one spent nothing", e.acquire(srl.Request{Key: "llm", N: 1, Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 40}}}), true, 0, srl.CauseNone)
	e.wantDecision("no cost in tokens still needs a request", e.acquire(srl.Request{Key: "llm", N: 9}), false, time.Minute, srl.CauseQuota)
	// A request that never reached the server gives its estimate back.
	e.observe("llm", srl.Observation{Bare: true, Refunded: []srl.Cost{{Unit: srl.UnitRequests, N: 1}, {Unit: srl.UnitTokens, N: 40}}})
	if st := e.peek("llm"); st.Quota.Remaining != 9 || st.Quotas[1].Remaining != 40 {
		t.Fatalf("after a refund: %+v", st.Quotas)
	}
}

// testSettlesEstimates: requests estimated at 400 tokens that the server
// charges 300 get the difference back with their responses, within one
// server second, when the decision's charges come back with them; a
// response produced before another one settled (out of order, the same
// second) never raises what is left past what that one showed.
func testSettlesEstimates(t *testing.T, f Factory) {
	e := newEnv(t, f)
	date := Epoch.Add(time.Second)
	tokens := func(left int) srl.Observation {
		return srl.Observation{Date: date, Limit: 100, Remaining: 100, Reset: 30 * time.Second,
			Quotas: []srl.QuotaObservation{{Unit: srl.UnitTokens, Limit: 4000, Remaining: left, Reset: 30 * time.Second}}}
	}
	e.observe("est", tokens(4000))
	spend := func() srl.Decision {
		t.Helper()
		d := e.acquire(srl.Request{Key: "est", N: 1, Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 400}}})
		if !d.Allowed {
			t.Fatalf("refused: %+v", d)
		}
		if len(d.Charged) != 2 || d.Charged[0] != (srl.Charge{Unit: srl.UnitRequests, N: 1, Mark: d.Charged[0].Mark}) ||
			d.Charged[1].Unit != srl.UnitTokens || d.Charged[1].N != 400 || d.Charged[1].Mark <= 0 {
			t.Fatalf("Charged %+v; want 1 request and 400 tokens, marked", d.Charged)
		}
		return d
	}
	left := func() int {
		t.Helper()
		for _, q := range e.peek("est").Quotas {
			if q.Unit == srl.UnitTokens {
				return q.Remaining
			}
		}
		t.Fatal("no token quota")
		return 0
	}
	// One at a time: each response settles its estimate to the server's 300.
	for i := 1; i <= 5; i++ {
		o := tokens(4000 - 300*i)
		o.Charged = spend().Charged
		e.observe("est", o)
		if got, want := left(), 4000-300*i; got != want {
			t.Fatalf("after %d settled requests %d tokens left, want %d", i, got, want)
		}
	}
	// Two at once, answered out of order: b's response (counting both)
	// first, then a's, produced before b arrived, which says more is left.
	// What is left stays at most what the server counted, 1900.
	a, b := spend(), spend()
	ob := tokens(2500 - 600)
	ob.Charged = b.Charged
	e.observe("est", ob)
	if got := left(); got != 1700 {
		t.Fatalf("with a in flight %d tokens left, want 1700 (2500 less both estimates)", got)
	}
	oa := tokens(2500 - 300)
	oa.Charged = a.Charged
	e.observe("est", oa)
	if got := left(); got != 1800 {
		// 2200 less b's 400 settled since a was admitted.
		t.Fatalf("after a's stale response %d tokens left, want 1800", got)
	}
	// A stale response without marks never raises it.
	c := spend()
	oc := tokens(2000)
	oc.Charged = []srl.Charge{{Unit: srl.UnitRequests, N: 1}, {Unit: srl.UnitTokens, N: 400}}
	e.observe("est", oc)
	if got := left(); got != 1400 {
		t.Fatalf("an unmarked stale response left %d tokens, want 1400", got)
	}
	// The next response, counting c, says the least yet: it is the newest.
	od := tokens(1600)
	od.Charged = c.Charged
	e.observe("est", od)
	if got := left(); got != 1600 {
		t.Fatalf("the newest response left %d tokens, want 1600", got)
	}
}

// testInFlight: a response from a later second may raise what is left, but
// never past what is still in flight: spends whose responses were not
// observed yet are subtracted from what it says, and each observed
// response settles its own spend.
func testInFlight(t *testing.T, f Factory) {
	e := newEnv(t, f)
	date := func(s int) time.Time { return Epoch.Add(time.Duration(s) * time.Second) }
	settle := []srl.Charge{{Unit: srl.UnitRequests, N: 1}}
	e.observe("if", srl.Observation{Limit: 10, Remaining: 10, Reset: 10 * time.Second, Date: date(0), Charged: []srl.Charge{}})
	for i := 0; i < 4; i++ {
		e.allow("if")
	}
	e.at(time.Second)
	// One of the four is answered, from a later second: the server counted
	// it (and maybe others) but three are still in flight.
	e.observe("if", srl.Observation{Limit: 10, Remaining: 9, Reset: 9 * time.Second, Date: date(1), Charged: settle})
	if got := e.peek("if").Quota.Remaining; got != 6 {
		t.Fatalf("with three in flight the response's 9 left is %d, want 6", got)
	}
	// The other three are answered; a response from yet a later second now
	// says what is left as it is.
	for i := 0; i < 3; i++ {
		e.observe("if", srl.Observation{Limit: 10, Remaining: 6, Reset: 9 * time.Second, Date: date(1), Charged: settle})
	}
	e.at(2 * time.Second)
	e.observe("if", srl.Observation{Limit: 10, Remaining: 8, Reset: 8 * time.Second, Date: date(2), Charged: []srl.Charge{}})
	if got := e.peek("if").Quota.Remaining; got != 8 {
		t.Fatalf("with nothing in flight a later response's 8 left is %d, want 8", got)
	}
	// A process that never reports its spends holds them only for
	// InFlightAge.
	e.allow("if")
	e.at(2*time.Second + 61*time.Second)
	e.observe("if", srl.Observation{Limit: 10, Remaining: 10, Reset: 10 * time.Second, Date: date(63), Charged: []srl.Charge{}})
	if got := e.peek("if").Quota.Remaining; got != 10 {
		t.Fatalf("a spend never settled still counts after a minute: %d left, want 10", got)
	}
}

// testInferredQuota: a server that says nothing but Retry-After on its
// refusals teaches its budget by them: what the fleet was admitted less
// what was refused, in a window as long as the Retry-After.
func testInferredQuota(t *testing.T, f Factory) {
	e := newEnv(t, f)
	r := srl.Request{Key: "ra", N: 1, Probe: time.Second}
	for i := 0; i < 32; i++ {
		if d := e.acquire(r); !d.Allowed && d.Cause != srl.CauseProbe {
			t.Fatalf("admission %d of a server that said nothing: %+v", i, d)
		}
		if i == 0 {
			// The probe's success carried no header: no more probing.
			e.observe("ra", srl.Observation{Bare: true, Succeeded: true})
		}
	}
	for i := 0; i < 12; i++ {
		e.observe("ra", srl.Observation{Limited: true, RetryAfter: time.Second})
	}
	st := e.peek("ra")
	if !st.Quota.Known || st.Quota.Limit != 20 || st.BlockedFor != time.Second {
		t.Fatalf("after 12 of 32 were refused: %+v; want an inferred quota of 20 and the block", st)
	}
	// After the block the inferred quota paces the fleet: 19 over the
	// next second, not a burst.
	e.at(time.Second)
	admitted := 0
	for ms := 1000; ms < 2000; ms += 10 {
		e.at(time.Duration(ms) * time.Millisecond)
		if d := e.acquire(r); d.Allowed {
			admitted++
		}
	}
	if admitted < 17 || admitted > 19 {
		t.Fatalf("the second after the block admitted %d, want about 19", admitted)
	}
	// A refusal despite the pace cuts the inferred quota by a quarter.
	e.at(2500 * time.Millisecond)
	e.observe("ra", srl.Observation{Limited: true, RetryAfter: time.Second})
	if got := e.peek("ra").Quota.Limit; got != 15 {
		t.Fatalf("after a refusal despite the pace the inferred limit is %d, want 15", got)
	}
	// A header's quota replaces what was inferred.
	e.observe("ra", srl.Observation{Limit: 100, Remaining: 80, Reset: 30 * time.Second, Date: Epoch.Add(3 * time.Second)})
	if st := e.peek("ra"); st.Quota.Limit != 100 || st.Quota.Remaining != 80 {
		t.Fatalf("a header after the inference: %+v", st.Quota)
	}
}

// testClockStep: after the backend's clock jumps an hour ahead and back,
// pacing state blocks a key for at most the limit's span plus the longest
// reservation, never for the size of the step.
func testClockStep(t *testing.T, f Factory) {
	e := newEnv(t, f)
	l := srl.PerSecond(10)
	e.at(time.Hour)
	for i := 0; i < 5; i++ {
		e.acquire(srl.Request{Key: "step", N: 1, Limits: []srl.Limit{l}, MaxWait: time.Second})
	}
	e.at(0)
	d := e.allow("step", l)
	if d.Allowed || d.RetryAfter > time.Second+srl.MaxReservation {
		t.Fatalf("after the clock stepped back an hour: %+v, want a wait of at most %v", d, time.Second+srl.MaxReservation)
	}
}

func testDefaultLimits(t *testing.T, f Factory) {
	e := newEnv(t, f)
	r := srl.Request{Key: "def", N: 1, Limits: []srl.Limit{srl.PerSecond(100).WithBurst(3)}, DefaultLimits: []srl.Limit{srl.PerSecond(1)}}
	e.wantDecision("default admits", e.acquire(r), true, 0, srl.CauseNone)
	e.wantDecision("default refuses", e.acquire(r), false, time.Second, srl.CauseLimit)
	if st, _ := e.h.Backend.Peek(context.Background(), r); len(st.Limits) != 2 {
		t.Fatalf("status before the quota is known lists %d limits, want fixed and default", len(st.Limits))
	}
	e.observe("def", srl.Observation{Limit: 100, Remaining: 100, Reset: time.Minute})
	// The default no longer applies; the fixed limit (burst 3, one spent
	// at t=0) still does.
	e.wantDecision("quota known", e.acquire(r), true, 0, srl.CauseNone)
	e.wantDecision("quota known", e.acquire(r), true, 0, srl.CauseNone)
	e.wantDecision("fixed refuses", e.acquire(r), false, 10*time.Millisecond, srl.CauseLimit)
	st, _ := e.h.Backend.Peek(context.Background(), r)
	if len(st.Limits) != 1 || st.Quota.Remaining != 98 {
		t.Fatalf("status once the quota is known: %+v", st)
	}
}

func testTTL(t *testing.T, f Factory) {
	e := newEnv(t, f)
	if e.h.TTL == nil {
		t.Skip("backend reports no TTL")
	}
	within := func(step string, lo, hi time.Duration) {
		t.Helper()
		ttl, ok := e.h.TTL("ttl")
		if !ok || ttl < lo || ttl > hi {
			t.Fatalf("%s: TTL %v (exists %v), want within [%v, %v]", step, ttl, ok, lo, hi)
		}
	}
	// The horizon is the TAT, one minute ahead; the state outlives it by
	// Grace to 2×Grace (the lower bounds leave a Grace for the clock of a
	// real server, which moves while the test reads it).
	e.allow("ttl", srl.PerMinute(1))
	within("after acquire", time.Minute, time.Minute+2*Grace)
	// The quota is kept one window past its reset: 30s + 30s.
	e.observe("ttl", srl.Observation{Limit: 10, Remaining: 10, Reset: 30 * time.Second})
	within("after observe", time.Minute, time.Minute+2*Grace)
	e.observe("ttl", srl.Observation{RetryAfter: 2 * time.Hour})
	within("after a long block", 2*time.Hour, 2*time.Hour+2*Grace)
	// A refusal writes nothing; the TTL never shrinks.
	e.allow("ttl", srl.PerMinute(1))
	within("after a refusal", 2*time.Hour-time.Second, 2*time.Hour+2*Grace)
}

// testTTLKeepsAhead admits a steady stream for simulated seconds: after
// every admission the state must outlive the horizon the decision reports
// by Grace, however the backend spaces its TTL updates.
func testTTLKeepsAhead(t *testing.T, f Factory) {
	e := newEnv(t, f)
	if e.h.TTL == nil {
		t.Skip("backend reports no TTL")
	}
	limit := srl.PerSecond(10).WithBurst(20)
	admitted := 0
	for step := 0; step < 300; step++ {
		e.clock.Advance(70 * time.Millisecond)
		d := e.allow("ahead", limit)
		if !d.Allowed {
			continue
		}
		admitted++
		ttl, ok := e.h.TTL("ahead")
		if want := d.ResetAfter + Grace; !ok || ttl < want {
			t.Fatalf("step %d: TTL %v (exists %v) after an admission with reset-after %v, want at least %v", step, ttl, ok, d.ResetAfter, want)
		}
	}
	// 21s at 10/s plus the burst of 20.
	if admitted < 225 || admitted > 231 {
		t.Fatalf("admitted %d of 300 calls at 14/s on 10/s with burst 20, want 230", admitted)
	}
}

func testPeekChangesNothing(t *testing.T, f Factory) {
	plain, peeked := newEnv(t, f), newEnv(t, f)
	limits := []srl.Limit{srl.PerSecond(5).WithBurst(2), srl.PerMinute(40)}
	for _, e := range []*env{plain, peeked} {
		e.observe("peek", srl.Observation{Limit: 30, Remaining: 20, Reset: 20 * time.Second})
	}
	for step := 0; step < 200; step++ {
		at := time.Duration(step) * 150 * time.Millisecond
		plain.at(at)
		peeked.at(at)
		peeked.peek("peek", limits...)
		a, b := plain.allow("peek", limits...), peeked.allow("peek", limits...)
		peeked.peek("peek", limits...)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("step %d: decision %+v with peeks, %+v without", step, b, a)
		}
	}
}

func testBadInput(t *testing.T, f Factory) {
	e := newEnv(t, f)
	ctx := context.Background()
	ok := srl.PerSecond(1)
	badRequests := []struct {
		name string
		r    srl.Request
		want error
	}{
		{"empty key", srl.Request{N: 1}, srl.ErrInvalidRequest},
		{"zero cost", srl.Request{Key: "bad", N: 0}, srl.ErrInvalidRequest},
		{"negative cost", srl.Request{Key: "bad", N: -3}, srl.ErrInvalidRequest},
		{"negative max wait", srl.Request{Key: "bad", N: 1, MaxWait: -time.Second}, srl.ErrInvalidRequest},
		{"cost above burst", srl.Request{Key: "bad", N: 2, Limits: []srl.Limit{ok}}, srl.ErrInvalidRequest},
		{"cost above a default's burst", srl.Request{Key: "bad", N: 2, DefaultLimits: []srl.Limit{ok}}, srl.ErrInvalidRequest},
		{"zero rate", srl.Request{Key: "bad", N: 1, Limits: []srl.Limit{{Rate: 0, Period: time.Second}}}, srl.ErrInvalidLimit},
		{"negative rate", srl.Request{Key: "bad", N: 1, Limits: []srl.Limit{{Rate: -1, Period: time.Second}}}, srl.ErrInvalidLimit},
		{"zero period", srl.Request{Key: "bad", N: 1, Limits: []srl.Limit{{Rate: 1}}}, srl.ErrInvalidLimit},
		{"negative period", srl.Request{Key: "bad", N: 1, Limits: []srl.Limit{{Rate: 1, Period: -time.Second}}}, srl.ErrInvalidLimit},
		{"negative burst", srl.Request{Key: "bad", N: 1, Limits: []srl.Limit{{Rate: 1, Period: time.Second, Burst: -1}}}, srl.ErrInvalidLimit},
		{"finer than 1µs", srl.Request{Key: "bad", N: 1, Limits: []srl.Limit{srl.PerSecond(2_000_000)}}, srl.ErrInvalidLimit},
		{"burst beyond the span", srl.Request{Key: "bad", N: 1, Limits: []srl.Limit{srl.PerHour(1).WithBurst(1 << 30)}}, srl.ErrInvalidLimit},
		{"too many limits", srl.Request{Key: "bad", N: 1, Limits: make([]srl.Limit, srl.MaxLimits+1)}, srl.ErrInvalidRequest},
	}
	for _, tc := range badRequests {
		if _, err := e.h.Backend.Acquire(ctx, tc.r); !errors.Is(err, tc.want) {
			t.Errorf("Acquire %s: error %v, want %v", tc.name, err, tc.want)
		}
		if tc.want == srl.ErrInvalidLimit || tc.r.Key == "" {
			if _, err := e.h.Backend.Peek(ctx, tc.r); !errors.Is(err, tc.want) {
				t.Errorf("Peek %s: error %v, want %v", tc.name, err, tc.want)
			}
		}
	}
	badObservations := []struct {
		name string
		o    srl.Observation
	}{
		{"negative remaining", srl.Observation{Limit: 10, Remaining: -1, Reset: time.Second}},
		{"negative limit", srl.Observation{Limit: -10, Remaining: 1, Reset: time.Second}},
		{"negative reset", srl.Observation{Remaining: 0, Reset: -time.Second}},
		{"negative retry-after", srl.Observation{RetryAfter: -time.Second}},
		{"reset decades away", srl.Observation{Remaining: 0, Reset: 30 * 365 * 24 * time.Hour}},
		{"retry-after past a day", srl.Observation{RetryAfter: 25 * time.Hour}},
		{"window past a day", srl.Observation{Remaining: 1, Reset: time.Second, Window: 48 * time.Hour}},
		{"enormous limit", srl.Observation{Limit: srl.MaxCount + 1, Remaining: 1, Reset: time.Second}},
	}
	for _, tc := range badObservations {
		if err := e.h.Backend.Observe(ctx, "bad", tc.o); !errors.Is(err, srl.ErrInvalidObservation) {
			t.Errorf("Observe %s: error %v, want ErrInvalidObservation", tc.name, err)
		}
	}
	if err := e.h.Backend.Observe(ctx, "", srl.Observation{RetryAfter: time.Second}); !errors.Is(err, srl.ErrInvalidRequest) {
		t.Errorf("Observe with an empty key: error %v, want ErrInvalidRequest", err)
	}
	if err := e.h.Backend.Reset(ctx, ""); !errors.Is(err, srl.ErrInvalidRequest) {
		t.Errorf("Reset with an empty key: error %v, want ErrInvalidRequest", err)
	}
	if st := e.peek("bad"); st.Quota.Known || st.BlockedFor != 0 {
		t.Errorf("rejected input changed the state: %+v", st)
	}
	e.wantDecision("after bad input", e.allow("bad", ok), true, 0, srl.CauseNone)
}

func testGarbageCannotPoison(t *testing.T, f Factory) {
	e := newEnv(t, f)
	garbage := []srl.Observation{
		{Remaining: 0, Reset: 100 * 365 * 24 * time.Hour},
		{RetryAfter: 1 << 62},
		{Limit: 1 << 50, Remaining: 1 << 50, Reset: time.Second},
	}
	for _, o := range garbage {
		_ = e.h.Backend.Observe(context.Background(), "poison", o)
	}
	e.wantDecision("after garbage", e.allow("poison"), true, 0, srl.CauseNone)
	// An observation with nothing to say is a no-op, not a block.
	e.observe("poison", srl.Observation{})
	e.observe("poison", srl.Observation{Limit: 10, Remaining: 0})
	e.wantDecision("after empty observations", e.allow("poison"), true, 0, srl.CauseNone)
	// A quota with an unknown limit is forgotten at its reset, so it can
	// never lock the key for good.
	e.observe("poison", srl.Observation{Remaining: 0, Reset: 2 * time.Second})
	e.wantDecision("spent, limit unknown", e.allow("poison"), false, 2*time.Second, srl.CauseQuota)
	e.at(2 * time.Second)
	e.wantDecision("after its reset", e.allow("poison"), true, 0, srl.CauseNone)
}

func testClockJumps(t *testing.T, f Factory) {
	e := newEnv(t, f)
	l := srl.PerSecond(1)
	e.at(10 * time.Second)
	e.wantDecision("at 10s", e.allow("jump", l), true, 0, srl.CauseNone)
	// Backwards: no extra admissions and no negative wait.
	e.at(5 * time.Second)
	e.wantDecision("back to 5s", e.allow("jump", l), false, 6*time.Second, srl.CauseLimit)
	e.at(10500 * time.Millisecond)
	e.wantDecision("at 10.5s", e.allow("jump", l), false, 500*time.Millisecond, srl.CauseLimit)
	e.at(11 * time.Second)
	e.wantDecision("at 11s", e.allow("jump", l), true, 0, srl.CauseNone)
	// Forwards by an hour: the refill is capped at the burst.
	burst := srl.PerSecond(10).WithBurst(3)
	e.at(time.Hour)
	n := 0
	for e.allow("jump", burst).Allowed {
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour idle admitted %d at once, want the burst 3", n)
	}
}

func testUnlimited(t *testing.T, f Factory) {
	e := newEnv(t, f)
	d := e.allow("free")
	if !d.Allowed || d.Remaining != -1 || d.ResetAfter != 0 {
		t.Fatalf("a key with no limits and no quota: %+v, want allowed with remaining -1", d)
	}
	if st := e.peek("free"); st.Utilization() != 0 || st.Limit != 0 {
		t.Fatalf("status of an unlimited key: %+v", st)
	}
}

func testReset(t *testing.T, f Factory) {
	e := newEnv(t, f)
	l := srl.PerMinute(1)
	e.allow("rst", l)
	e.observe("rst", srl.Observation{Limit: 5, Remaining: 0, Reset: time.Minute, RetryAfter: time.Minute})
	if err := e.h.Backend.Reset(context.Background(), "rst"); err != nil {
		t.Fatal(err)
	}
	st := e.peek("rst", l)
	if st.Quota.Known || st.BlockedFor != 0 || st.Limits[0].Remaining != 1 {
		t.Fatalf("status after Reset: %+v", st)
	}
	e.wantDecision("after Reset", e.allow("rst", l), true, 0, srl.CauseNone)
	if e.h.TTL != nil {
		if err := e.h.Backend.Reset(context.Background(), "rst"); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.h.TTL("rst"); ok {
			t.Fatal("state still stored after Reset")
		}
	}
}

func testKeysIndependent(t *testing.T, f Factory) {
	e := newEnv(t, f)
	l := srl.PerMinute(1)
	e.allow("a", l)
	e.observe("a", srl.Observation{RetryAfter: time.Minute})
	e.wantDecision("other key", e.allow("b", l), true, 0, srl.CauseNone)
	for _, k := range []string{"with space", "{braces}", "x\x00y", string(make([]byte, 300))} {
		e.wantDecision("odd key "+k, e.allow(k, l), true, 0, srl.CauseNone)
		e.wantDecision("odd key again", e.allow(k, l), false, time.Minute, srl.CauseLimit)
	}
}

func testConcurrentExactBudget(t *testing.T, f Factory) {
	e := newEnv(t, f)
	budget := srl.Limit{Rate: 20, Period: time.Hour, Burst: 20}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := e.h.Backend.Acquire(context.Background(), srl.Request{Key: "race", N: 1, Limits: []srl.Limit{budget}})
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != 20 {
		t.Fatalf("50 goroutines racing for a budget of 20: %d admitted", got)
	}
}
