package backendtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// The window limits' tests. A window limit admits at most Rate in any
// window of one Period; it counts in sub-windows of a tenth of the Period
// (rounded up to a microsecond), so an event stops counting less than
// windowSpan after it was admitted.

// windowSpan is how long an admission may count against a window limit at
// most: its Period, one sub-window, and under ten microseconds of rounding
// when the Period does not divide into ten.
func windowSpan(l srl.Limit) time.Duration {
	sub := (l.Period + 10*time.Microsecond - time.Nanosecond) / 10
	return l.Period + sub.Truncate(time.Microsecond) + 10*time.Microsecond
}

// windowLimits are the window limits the bound tests drive: round ones,
// one whose period does not divide into ten sub-windows, one of a minute,
// one of little more than a millisecond.
var windowLimits = []srl.Limit{
	srl.Window(10, time.Second),
	srl.Window(7, 3*time.Second+7*time.Microsecond),
	srl.Window(30, time.Minute),
	srl.Window(4, 1503*time.Microsecond),
}

// admission is one admitted request: when, and its cost.
type admission struct {
	at time.Duration
	n  int
}

// checkWindowBound fails when any window [a, a+Period) starting at an
// admission holds more than Rate (a window holding the most admissions can
// always be slid to start at one).
func checkWindowBound(t *testing.T, l srl.Limit, admitted []admission) {
	t.Helper()
	for i, start := range admitted {
		sum := 0
		for _, a := range admitted[i:] {
			if a.at >= start.at+l.Period {
				break
			}
			sum += a.n
		}
		if sum > l.Rate {
			t.Fatalf("%v: %d admitted in [%v, %v)", l, sum, start.at, start.at+l.Period)
		}
	}
}

// testWindowBound drives each window limit with bursts at random instants
// (every instant sends until refused, costs 1 to 3, the first instant at a
// random phase of the sub-windows) over twelve periods and checks every
// window: never more than Rate in any of them; and never starved: a
// refusal means the last windowSpan holds more than Rate less its cost, so
// every stretch of windowSpan plus the longest gap holds at least Rate less
// the largest cost plus one.
func testWindowBound(t *testing.T, f Factory) {
	for i, l := range windowLimits {
		t.Run(l.String(), func(t *testing.T) {
			e := newEnv(t, f)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			maxGap := max(l.Period/30, time.Microsecond)
			maxCost := min(3, l.Rate)
			start := time.Duration(rng.Int64N(int64(l.Period/time.Microsecond))) * time.Microsecond
			end := start + 12*l.Period
			var admitted []admission
			for at := start; at < end; at += time.Duration(1+rng.Int64N(int64(maxGap/time.Microsecond))) * time.Microsecond {
				e.at(at)
				for k := 0; ; k++ {
					n := 1 + rng.IntN(maxCost)
					d := e.acquire(srl.Request{Key: "window", N: n, Limits: []srl.Limit{l}})
					if !d.Allowed {
						if d.Cause != srl.CauseLimit || d.RetryAfter <= 0 || d.RetryAfter > windowSpan(l) {
							t.Fatalf("refusal at %v: %+v, want the limit's, within %v", at, d, windowSpan(l))
						}
						break
					}
					if k > 3*l.Rate {
						t.Fatalf("%d admitted at %v", k, at)
					}
					admitted = append(admitted, admission{at, n})
				}
			}
			checkWindowBound(t, l, admitted)
			total := 0
			for _, a := range admitted {
				total += a.n
			}
			if floor := (l.Rate - maxCost + 1) * int((end-start)/(windowSpan(l)+maxGap)); total < floor {
				t.Errorf("admitted %d over %v, want at least %d", total, end-start, floor)
			}
		})
	}
}

// testWindowBurst: a window admits its whole rate at once, then nothing
// until the sub-window that holds the burst leaves the span.
func testWindowBurst(t *testing.T, f Factory) {
	e := newEnv(t, f)
	l := srl.Window(50, time.Minute) // sub-windows of 6s
	e.at(13 * time.Second)
	for i := 0; i < 50; i++ {
		if d := e.allow("burst", l); !d.Allowed || d.Remaining != 49-i {
			t.Fatalf("request %d of a burst of 50: %+v", i, d)
		}
	}
	// The burst's sub-window is [12s, 18s): it leaves the span at 78s.
	e.wantDecision("past the burst", e.allow("burst", l), false, 65*time.Second, srl.CauseLimit)
	e.wantDecision("a whole window at once", e.acquire(srl.Request{Key: "burst2", N: 50, Limits: []srl.Limit{l}}), true, 0, srl.CauseNone)
}

// testWindowRetryAfterExact retries exactly when each refusal says, and a
// microsecond before that too: refused then, admitted at that time. For
// periods that divide into ten sub-windows (the suite's epoch starts one),
// the caller gets the burst at once and again every 1.1 periods.
func testWindowRetryAfterExact(t *testing.T, f Factory) {
	tests := []struct {
		l    srl.Limit
		n    int
		want int // requests admitted in three periods; 0: not checked
	}{
		{srl.Window(3, 10*time.Second), 1, 9},
		{srl.Window(10, time.Second), 1, 30},
		{srl.Window(10, time.Second), 3, 9},
		{srl.Window(4, 1503*time.Microsecond), 1, 0},
		{srl.Window(5, 7*time.Second+3*time.Microsecond), 2, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v cost %d", tc.l, tc.n), func(t *testing.T) {
			e := newEnv(t, f)
			r := srl.Request{Key: "exact", N: tc.n, Limits: []srl.Limit{tc.l}, MaxWait: time.Minute}
			end := Epoch.Add(3 * tc.l.Period)
			admitted := 0
			for e.clock.Now().Before(end) {
				d := e.acquire(r)
				if d.Allowed {
					if d.Delay != 0 {
						t.Fatalf("a window limit reserved a slot: %+v", d)
					}
					admitted++
					continue
				}
				if d.RetryAfter <= 0 || d.Cause != srl.CauseLimit {
					t.Fatalf("refusal without a retry time: %+v", d)
				}
				if !e.clock.Now().Add(d.RetryAfter).Before(end) {
					break
				}
				if d.RetryAfter > time.Microsecond {
					e.clock.Advance(d.RetryAfter - time.Microsecond)
					e.wantDecision("a microsecond early", e.acquire(r), false, time.Microsecond, srl.CauseLimit)
					e.clock.Advance(time.Microsecond)
				} else {
					e.clock.Advance(d.RetryAfter)
				}
				if d := e.acquire(r); !d.Allowed {
					t.Fatalf("at the retry time: %+v", d)
				}
				admitted++
			}
			if tc.want > 0 && admitted != tc.want {
				t.Fatalf("admitted %d in three periods, want %d", admitted, tc.want)
			}
			if floor := tc.l.Rate / tc.n * int(3*tc.l.Period/windowSpan(tc.l)); admitted < floor {
				t.Fatalf("admitted %d in three periods, want at least %d", admitted, floor)
			}
		})
	}
}

// testWindowAllOrNothing mixes a window limit, a pacing limit and a quota:
// whichever refuses, none is spent, and a window's refusal is never
// reserved however long the caller would wait.
func testWindowAllOrNothing(t *testing.T, f Factory) {
	e := newEnv(t, f)
	window := srl.Window(3, 10*time.Second) // sub-windows of 1s
	pacing := srl.PerSecond(2)              // one every 500ms
	limits := []srl.Limit{window, pacing}
	e.observe("mix", srl.Observation{Limit: 5, Remaining: 4, Reset: time.Minute})
	state := func() (int, srl.LimitStatus, int) {
		st := e.peek("mix", limits...)
		return st.Limits[0].Remaining, st.Limits[1], st.Quota.Remaining
	}
	e.wantDecision("first", e.allow("mix", limits...), true, 0, srl.CauseNone)
	w0, p0, q0 := state()
	if w0 != 2 || q0 != 3 {
		t.Fatalf("after one admission: window %d left, quota %d; want 2 and 3", w0, q0)
	}
	e.wantDecision("pacing refuses", e.allow("mix", limits...), false, 500*time.Millisecond, srl.CauseLimit)
	if w, p, q := state(); w != w0 || p != p0 || q != q0 {
		t.Fatalf("the pacing limit's refusal spent: window %d, quota %d, pacing %+v", w, q, p)
	}
	e.at(500 * time.Millisecond)
	e.wantDecision("second", e.allow("mix", limits...), true, 0, srl.CauseNone)
	e.at(time.Second)
	e.wantDecision("third", e.allow("mix", limits...), true, 0, srl.CauseNone)
	// Two in sub-window 0, one in sub-window 1: the first two leave the
	// span at 11s.
	e.at(1500 * time.Millisecond)
	w1, p1, q1 := state()
	e.wantDecision("window refuses", e.allow("mix", limits...), false, 9500*time.Millisecond, srl.CauseLimit)
	r := srl.Request{Key: "mix", N: 1, Limits: limits, MaxWait: time.Minute}
	e.wantDecision("a window is never reserved", e.acquire(r), false, 9500*time.Millisecond, srl.CauseLimit)
	if w, p, q := state(); w != w1 || w != 0 || p != p1 || q != q1 {
		t.Fatalf("the window's refusal spent: window %d, quota %d, pacing %+v then %+v", w, q, p1, p)
	}
	// The quota (1 left) goes at 11s, then refuses; the window, which
	// counts that one and (from 12s) no older one, is not spent.
	e.at(11 * time.Second)
	e.wantDecision("fourth", e.allow("mix", limits...), true, 0, srl.CauseNone)
	e.at(12 * time.Second)
	w2, p2, _ := state()
	e.wantDecision("quota refuses", e.allow("mix", limits...), false, 48*time.Second, srl.CauseQuota)
	if w, p, q := state(); w != w2 || w != 2 || p != p2 || q != 0 {
		t.Fatalf("the quota's refusal spent: window %d, quota %d, pacing %+v then %+v", w, q, p2, p)
	}
}

// testWindowStatus: a window's status says what is left in the counted
// span and how long until all of it has left, and the tightest budget is
// the window when it is the most spent.
func testWindowStatus(t *testing.T, f Factory) {
	e := newEnv(t, f)
	l := srl.Window(5, time.Second) // sub-windows of 100ms
	if st := e.peek("ws", l); st.Found || st.Limits[0].Remaining != 5 || st.Limits[0].ResetAfter != 0 || st.Limits[0].Limit != l {
		t.Fatalf("status of an untouched window: %+v", st)
	}
	e.acquire(srl.Request{Key: "ws", N: 2, Limits: []srl.Limit{l}})
	e.at(350 * time.Millisecond)
	e.allow("ws", l)
	e.at(400 * time.Millisecond)
	// The last count, in sub-window [300ms, 400ms), leaves the span at
	// 1.4s.
	st := e.peek("ws", l, srl.PerHour(100))
	want := srl.LimitStatus{Limit: l, Remaining: 2, ResetAfter: time.Second}
	if !st.Found || st.Limits[0] != want || st.Limit != 5 || st.Remaining != 2 || st.ResetAfter != time.Second {
		t.Fatalf("status: %+v, want the window %+v as the tightest budget", st, want)
	}
	e.at(1100 * time.Millisecond)
	if got := e.peek("ws", l).Limits[0]; got.Remaining != 4 || got.ResetAfter != 300*time.Millisecond {
		t.Fatalf("once the burst's sub-window has left: %+v, want 4 left, empty in 300ms", got)
	}
	e.at(1400 * time.Millisecond)
	if got := e.peek("ws", l).Limits[0]; got.Remaining != 5 || got.ResetAfter != 0 {
		t.Fatalf("once every count has left: %+v", got)
	}
}

// testWindowTTL: the state lives until the last count leaves the span,
// plus Grace to 2×Grace, and from then on the window admits like a new one.
func testWindowTTL(t *testing.T, f Factory) {
	e := newEnv(t, f)
	l := srl.Window(2, time.Minute) // sub-windows of 6s: a count lives 66s at most
	e.at(time.Second)
	e.acquire(srl.Request{Key: "wttl", N: 2, Limits: []srl.Limit{l}})
	if e.h.TTL != nil {
		if ttl, ok := e.h.TTL("wttl"); !ok || ttl < 65*time.Second || ttl > 65*time.Second+2*Grace {
			t.Fatalf("TTL %v (exists %v) after an admission at 1s, want within [65s, 65s+2×Grace]", ttl, ok)
		}
	}
	e.at(66*time.Second - time.Microsecond)
	e.wantDecision("the last instant it counts", e.allow("wttl", l), false, time.Microsecond, srl.CauseLimit)
	e.at(66 * time.Second)
	e.wantDecision("expired", e.acquire(srl.Request{Key: "wttl", N: 2, Limits: []srl.Limit{l}}), true, 0, srl.CauseNone)
	if e.h.TTL != nil {
		// 66s begins a sub-window: its counts live a whole 66s.
		if ttl, ok := e.h.TTL("wttl"); !ok || ttl < 66*time.Second || ttl > 66*time.Second+2*Grace {
			t.Fatalf("TTL %v (exists %v) after an admission at 66s, want within [66s, 66s+2×Grace]", ttl, ok)
		}
	}
}

// testWindowDefaults: window limits may be default limits too, applying
// only while the server's quota is unknown.
func testWindowDefaults(t *testing.T, f Factory) {
	e := newEnv(t, f)
	r := srl.Request{Key: "wdef", N: 1, DefaultLimits: []srl.Limit{srl.Window(2, time.Minute), srl.Window(10, time.Hour)}}
	e.wantDecision("default admits", e.acquire(r), true, 0, srl.CauseNone)
	e.wantDecision("default admits a burst", e.acquire(r), true, 0, srl.CauseNone)
	e.wantDecision("default refuses", e.acquire(r), false, 66*time.Second, srl.CauseLimit)
	e.observe("wdef", srl.Observation{Limit: 100, Remaining: 100, Reset: time.Minute})
	for i := 0; i < 5; i++ {
		e.wantDecision("quota known", e.acquire(r), true, 0, srl.CauseNone)
	}
	if st, _ := e.h.Backend.Peek(context.Background(), r); len(st.Limits) != 0 || st.Quota.Remaining != 95 {
		t.Fatalf("status once the quota is known: %+v", st)
	}
}

// testLimitFieldsBounded gives one key 20,000 different limits of both
// kinds, each in a request beside a window limit in use, with the clock
// moving: the key never holds more than keystate.MaxLimitFields limit
// fields, and the window in use, never dropped, keeps its bound. The
// requests of one instant go at once, as a busy process sends them (a
// Redis backend decides them in one script call, which reads the full key
// once).
func testLimitFieldsBounded(t *testing.T, f Factory) {
	e := newEnv(t, f)
	if e.h.LimitFields == nil {
		t.Skip("backend reports no field count")
	}
	inUse := srl.Window(1000, time.Second)
	var admitted []admission
	const (
		limits     = 20_000
		perInstant = 50
		step       = 35 * time.Millisecond // 1,428 a second, past the 1,000 in use
	)
	for first := 0; first < limits; first += perInstant {
		at := time.Duration(first/perInstant) * step
		e.at(at)
		var ok atomic.Int64
		var wg sync.WaitGroup
		for i := first; i < first+perInstant; i++ {
			made := srl.Window(1+i, time.Hour)
			if i%2 == 0 {
				// Pacing limits whose TATs go stale at various speeds.
				made = srl.Every(1+i, time.Duration(1+i%90)*time.Second)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := e.h.Backend.Acquire(context.Background(), srl.Request{Key: "many", N: 1, Limits: []srl.Limit{inUse, made}})
				if err != nil {
					t.Errorf("Acquire with %v at %v: %v", made, at, err)
				} else if d.Allowed {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		for range ok.Load() {
			admitted = append(admitted, admission{at, 1})
		}
		// Full once as many limits were admitted, and full it stays: a
		// field goes only to make room for another.
		n := e.h.LimitFields("many")
		if n > keystate.MaxLimitFields || first >= 2*keystate.MaxLimitFields && n != keystate.MaxLimitFields {
			t.Fatalf("after %d limits the key holds %d limit fields, want %d", first+perInstant, n, keystate.MaxLimitFields)
		}
	}
	checkWindowBound(t, inUse, admitted)
	dur := time.Duration(limits/perInstant) * step
	if floor := inUse.Rate * int(dur/(windowSpan(inUse)+step)); len(admitted) < floor {
		t.Fatalf("the window in use admitted %d over %v, want at least %d", len(admitted), dur, floor)
	}
	// A new limit beside the one in use decides from a fresh state, and
	// keeps it; one made and dropped long ago starts afresh.
	e.at(dur + 2*time.Second)
	fresh := srl.Window(5, time.Hour)
	for want := 4; want >= 3; want-- {
		if d := e.allow("many", inUse, fresh); !d.Allowed || d.Remaining != want {
			t.Fatalf("a new window beside the one in use: %+v, want %d left", d, want)
		}
	}
	if d := e.acquire(srl.Request{Key: "many", N: 2, Limits: []srl.Limit{srl.Window(2, time.Hour)}}); !d.Allowed {
		t.Fatalf("a window made and dropped long ago: %+v, want admitted as new", d)
	}
}

// LimitFieldsOf counts the limit fields ("g:…" TATs, "w:…" windows) among
// the field names of a key's Redis hash: the LimitFields of a Harness on a
// Redis backend.
func LimitFieldsOf(fields []string) int {
	n := 0
	for _, f := range fields {
		if len(f) > 2 && (f[:2] == "g:" || f[:2] == "w:") {
			n++
		}
	}
	return n
}
