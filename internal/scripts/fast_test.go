package scripts

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// A plain request (pacing limits only, no costs, no probe) is sent for
// the script's fast path, which may decide it only on a key that holds
// nothing but its TATs. On a key that holds anything else the decision
// must still be the twin's: each case leaves such a state, then plain
// requests of one and of two limits are decided alone and in groups (sent
// as runs of identical requests), on miniredis and, when installed, on a
// real redis-server.
func TestFastPathDefersToState(t *testing.T) {
	backends := map[string]*redis.Client{}
	_, backends["miniredis"] = fuzzBackend(t)
	if bin, err := exec.LookPath("redis-server"); err == nil && !testing.Short() {
		backends["redis-server"] = startRedis(t, bin)
	}
	spent := srl.Observation{Quotas: []srl.QuotaObservation{{Unit: srl.UnitRequests, Limit: 10, Remaining: 0, Reset: 30 * time.Second}}, Succeeded: true}
	refused := srl.Observation{Limited: true, RetryAfter: 5 * time.Second}
	lots := srl.Observation{Quotas: []srl.QuotaObservation{{Unit: srl.UnitRequests, Limit: 1000, Remaining: 1, Reset: time.Minute}}, Succeeded: true}
	pacing := srl.PerSecond(5).WithBurst(3)
	other := srl.PerMinute(50)
	cases := []struct {
		name    string
		prepare func(do func(keystate.Item), observe func(srl.Observation))
	}{
		{"empty", func(func(keystate.Item), func(srl.Observation)) {}},
		{"its own TAT", func(do func(keystate.Item), _ func(srl.Observation)) {
			do(item(srl.Request{N: 1, Limits: []srl.Limit{pacing}}))
		}},
		{"a spent quota", func(do func(keystate.Item), observe func(srl.Observation)) {
			do(item(srl.Request{N: 1, Limits: []srl.Limit{pacing}}))
			observe(spent)
		}},
		{"a quota with one left", func(do func(keystate.Item), observe func(srl.Observation)) {
			observe(lots)
		}},
		{"a block", func(do func(keystate.Item), observe func(srl.Observation)) {
			do(item(srl.Request{N: 1, Limits: []srl.Limit{pacing}}))
			observe(refused)
		}},
		{"another limit's TAT", func(do func(keystate.Item), _ func(srl.Observation)) {
			do(item(srl.Request{N: 1, Limits: []srl.Limit{other}}))
		}},
		{"a window", func(do func(keystate.Item), _ func(srl.Observation)) {
			do(item(srl.Request{N: 1, Limits: []srl.Limit{srl.Window(2, time.Second)}}))
		}},
		{"a probe lease", func(do func(keystate.Item), _ func(srl.Observation)) {
			do(item(srl.Request{N: 1, Probe: time.Second}))
		}},
		{"a full key", func(do func(keystate.Item), _ func(srl.Observation)) {
			for i := range keystate.MaxLimitFields {
				do(item(srl.Request{N: 1, Limits: []srl.Limit{srl.Every(1000+i, time.Hour)}}))
			}
		}},
	}
	plain := []keystate.Item{
		item(srl.Request{N: 1, Limits: []srl.Limit{pacing}}),
		item(srl.Request{N: 2, Limits: []srl.Limit{pacing, other}}),
		// the first but for its limit, and but for its reservation bound
		item(srl.Request{N: 1, Limits: []srl.Limit{other}}),
		item(srl.Request{N: 1, Limits: []srl.Limit{pacing}, MaxWait: time.Second}),
	}
	for name, rdb := range backends {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				if err := rdb.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				now := fuzzEpoch
				run := NewRunner(rdb, func() time.Time { return time.UnixMicro(now) })
				var twin keystate.State
				const key = "fast{k}"
				do := func(it keystate.Item) {
					t.Helper()
					var want keystate.Result
					twin.Acquire(now, &it, &want)
					if got, err := acquireOne(ctx, run, key, it); err != nil || got != want {
						t.Fatalf("preparing: lua %+v (%v)\n go %+v", got, err, want)
					}
				}
				observe := func(o srl.Observation) {
					t.Helper()
					n, err := o.Normalize()
					if err != nil {
						t.Fatal(err)
					}
					obs, params := keystate.ObsFrom(n), keystate.Params(keystate.DefaultBackoffBase, keystate.DefaultBackoffMax)
					want, _ := twin.Observe(now, obs, params)
					if got, err := run.Observe(ctx, key, obs, params); err != nil || got != want {
						t.Fatalf("preparing: lua %+v (%v)\n go %+v", got, err, want)
					}
				}
				c.prepare(do, observe)
				for round := range 3 {
					now += 50_000
					for _, it := range plain {
						var want keystate.Result
						twin.Acquire(now, &it, &want)
						got, err := acquireOne(ctx, run, key, it)
						if err != nil || got != want {
							t.Fatalf("round %d, %d limit(s) alone: lua %+v (%v)\n go %+v", round, len(it.All), got, err, want)
						}
					}
					// Groups go in runs of identical requests: one run of
					// one limit, runs of two limits, runs of each.
					p0, p1, p2, p3 := plain[0], plain[1], plain[2], plain[3]
					for _, group := range [][]keystate.Item{{p0, p0, p0, p0}, {p1, p1}, {p0, p1, p0}, {p1, p1, p0, p0, p0, p1}, {p0, p2, p0, p3, p3, p3, p3}} {
						want := make([]keystate.Result, len(group))
						for i := range group {
							twin.Acquire(now, &group[i], &want[i])
						}
						got := make([]keystate.Result, len(group))
						if err := run.AcquireGroup(ctx, key, group, got); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
							t.Fatalf("round %d, a group of %d: lua %+v (%v)\n go %+v", round, len(group), got, err, want)
						}
					}
				}
			})
		}
	}
}
