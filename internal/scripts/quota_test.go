package scripts

import (
	"context"
	"fmt"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// An HTTP client's request on a host whose quota it learned asks for
// requests alone (a probe lease, maybe default limits a known quota sets
// aside): acquire.lua decides it on its quota path when the key holds one
// quota in requests with room for the requests, and defers to the full
// decision otherwise. Either way the decisions, the replies and the state
// must be the twin's: each case leaves a state, then such requests (and
// requests the quota path must not take) are decided alone and in groups,
// over rounds in which the clock moves past the window's end and past
// what counts as in flight, and responses say what is left, on miniredis
// and, when installed, on a real redis-server.
func TestQuotaPathMatchesTwin(t *testing.T) {
	quota := func(limit, remaining int, reset time.Duration) srl.QuotaObservation {
		return srl.QuotaObservation{Unit: srl.UnitRequests, Limit: limit, Remaining: remaining, Reset: reset}
	}
	roomy := srl.Observation{Quotas: []srl.QuotaObservation{quota(1000, 900, 2*time.Second)}, Succeeded: true}
	cases := []struct {
		name    string
		prepare []srl.Observation
		// raw, when set, is the quota field written as is (a reset
		// further ahead than any observation sets: the clock went back)
		raw string
		// answer is the reset the responses between rounds tell
		answer time.Duration
	}{
		{name: "roomy", prepare: []srl.Observation{roomy}},
		{name: "with reset slack", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{{
			Unit: srl.UnitRequests, Limit: 500, Remaining: 400, Reset: 1500 * time.Millisecond, ResetSlack: time.Second,
		}}, Succeeded: true}}},
		{name: "a window the server names", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{{
			Unit: srl.UnitRequests, Limit: 60, Remaining: 30, Reset: 900 * time.Millisecond, Window: time.Second,
		}}, Succeeded: true}}},
		{name: "throttled with room", prepare: []srl.Observation{{
			Limited: true, Quotas: []srl.QuotaObservation{quota(1000, 900, 2*time.Second)},
		}}},
		{name: "a limit not told", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{quota(0, 900, 2*time.Second)}, Succeeded: true}}},
		{name: "a long window", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{quota(5000, 4000, 5*time.Minute)}, Succeeded: true}}, answer: 5 * time.Minute},
		{name: "a reset past the horizon", raw: fmt.Sprintf("requests 1000 2000000 %d 900 0 0 0 0 0 0 0 0 0 0 0", fuzzEpoch+2*srl.MaxHorizon.Microseconds())},
		{name: "two left", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{quota(100, 2, time.Second)}, Succeeded: true}}},
		{name: "spent", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{quota(100, 0, time.Second)}, Succeeded: true}}},
		{name: "blocked", prepare: []srl.Observation{roomy, {Limited: true, RetryAfter: 300 * time.Millisecond}}},
		{name: "in tokens too", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{
			quota(1000, 900, 2*time.Second), {Unit: srl.UnitTokens, Limit: 9000, Remaining: 8000, Reset: time.Second},
		}, Succeeded: true}}},
		{name: "in tokens alone", prepare: []srl.Observation{{Quotas: []srl.QuotaObservation{
			{Unit: srl.UnitTokens, Limit: 9000, Remaining: 8000, Reset: time.Second},
		}, Succeeded: true}}},
		{name: "a limit only", prepare: []srl.Observation{{Limit: 5}}},
	}
	requests := []keystate.Item{
		// the transport's request
		item(srl.Request{N: 1, Probe: 2 * time.Second, MaxWait: 30 * time.Second}),
		item(srl.Request{N: 3}),
		item(srl.Request{N: 1, DefaultLimits: []srl.Limit{fastPacing}, Probe: time.Second}),
		// not for the quota path: a fixed limit, a cost in tokens
		item(srl.Request{N: 1, Limits: []srl.Limit{fastOther}, Probe: time.Second}),
		item(srl.Request{N: 1, Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 40}}}),
	}
	r0, r1, r2, r3 := requests[0], requests[1], requests[2], requests[3]
	groups := [][]keystate.Item{{r0, r0, r0}, {r1, r0, r2}, {r0, r3, r0}, {r2, r2}}
	limits := []keystate.Limit{r2.All[0], r3.All[0]}
	for name, rdb := range fastBackends(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				run, now := emptied(t, rdb)
				var twin keystate.State
				const key = "quota{k}"
				check := func(what string) {
					t.Helper()
					gotNow, st, err := run.Status(ctx, key, limits)
					if err != nil || gotNow != *now || !sameState(*now, st, twin, limits) {
						t.Fatalf("%s: state lua %+v (%v)\n go %+v", what, st, err, twin)
					}
					// as stored, too: a status read clamps what it decodes
					if q, want := rdb.HGet(ctx, key, "q").Val(), keystate.EncodeQuotas(twin.Quotas); q != want {
						t.Fatalf("%s: quotas stored as %q, the twin's %q", what, q, want)
					}
				}
				for _, o := range c.prepare {
					_, observe := preparers(t, run, key, &twin, *now)
					observe(o)
					*now += 10_000
				}
				if c.raw != "" {
					if err := rdb.HSet(ctx, key, "q", c.raw).Err(); err != nil {
						t.Fatal(err)
					}
					_, st, err := run.Status(ctx, key, nil)
					if err != nil || len(st.Quotas) != 1 {
						t.Fatalf("the raw quota reads as %+v (%v)", st, err)
					}
					twin = st
				}
				answer := c.answer
				if answer == 0 {
					answer = 2 * time.Second
				}
				for round := range 8 {
					for i, it := range requests {
						var want keystate.Result
						twin.Acquire(*now, &it, &want)
						got, err := acquireOne(ctx, run, key, it)
						if err != nil || got != want {
							t.Fatalf("round %d, request %d alone: lua %+v (%v)\n go %+v", round, i, got, err, want)
						}
						check(fmt.Sprintf("round %d, request %d alone", round, i))
					}
					for gi, group := range groups {
						want := make([]keystate.Result, len(group))
						for i := range group {
							twin.Acquire(*now, &group[i], &want[i])
						}
						got := make([]keystate.Result, len(group))
						if err := run.AcquireGroup(ctx, key, group, got); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
							t.Fatalf("round %d, group %d: lua %+v (%v)\n go %+v", round, gi, got, err, want)
						}
					}
					check(fmt.Sprintf("round %d, groups", round))
					// Past the window's end without a response between
					// rounds 2 and 5, then past what counts as in flight.
					*now += 450_000
					if round == 5 {
						*now += keystate.InFlightAge.Microseconds() + 1
					}
					if round == 1 || round == 6 {
						// The response to what was admitted: the server's
						// count, which settles what is in flight (the
						// first not a success: a throttle streak outlives
						// it).
						_, observe := preparers(t, run, key, &twin, *now)
						observe(srl.Observation{Quotas: []srl.QuotaObservation{quota(1000, 800-round*20, answer)}, Succeeded: round == 6})
					}
				}
			})
		}
	}
}
