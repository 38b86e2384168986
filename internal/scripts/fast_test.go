package scripts

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
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
	backends := fastBackends(t)
	pacing, other := fastPacing, fastOther
	cases := stateCases()
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
				run, now := emptied(t, rdb)
				var twin keystate.State
				const key = "fast{k}"
				c.prepare(preparers(t, run, key, &twin, *now))
				for round := range 3 {
					*now += 50_000
					for _, it := range plain {
						var want keystate.Result
						twin.Acquire(*now, &it, &want)
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
							twin.Acquire(*now, &group[i], &want[i])
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

// Keys decided in one call send '=' for requests the same as the previous
// key's. Each key must still be decided as the twin decides it in its own
// state: every state of stateCases, next to keys whose requests differ, to
// a key that is not a hash and to keys whose requests are not plain (a
// probe, a cost) but name the same limits, over
// rounds that shift which keys share requests.
func TestKeysSharingRequests(t *testing.T) {
	p0 := item(srl.Request{N: 1, Limits: []srl.Limit{fastPacing}})
	p1 := item(srl.Request{N: 2, Limits: []srl.Limit{fastPacing, fastOther}})
	p2 := item(srl.Request{N: 1, Limits: []srl.Limit{fastOther}})
	probe := item(srl.Request{N: 1, Limits: []srl.Limit{fastPacing}, Probe: time.Second})
	costly := item(srl.Request{N: 1, Limits: []srl.Limit{fastPacing}, Costs: []srl.Cost{{Unit: "tokens", N: 5}}})
	// (A probe or a cost after the same limits' plain request is not plain:
	// it must not be sent as '='.)
	patterns := [][]keystate.Item{{p0}, {p0}, {p0}, {p0, p0}, {p0, p0}, {probe}, {p0}, {probe}, {p0}, {costly},
		{p1, p0}, {p1, p0}, {p2}, {p2}}
	cases := stateCases()
	for name, rdb := range fastBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			now := fuzzEpoch
			run := NewRunner(rdb, func() time.Time { return time.UnixMicro(now) })
			const squatted = 2 // the index of the key that is not a hash
			var keys []string
			var twins []*keystate.State
			for i := range 2 * len(cases) {
				key := fmt.Sprintf("share{%d}", i)
				keys, twins = append(keys, key), append(twins, new(keystate.State))
				if i == squatted {
					if err := rdb.Set(ctx, key, "not a hash", 0).Err(); err != nil {
						t.Fatal(err)
					}
					continue
				}
				cases[i%len(cases)].prepare(preparers(t, run, key, twins[i], now))
			}
			shared := 0
			for round := range len(patterns) {
				now += 70_000
				groups := make([]Group, len(keys))
				for i, key := range keys {
					groups[i] = Group{Key: key, Items: patterns[(i+round)%len(patterns)]}
					if i > 0 && samePlainGroup(groups[i-1].Items, groups[i].Items) {
						shared++
					}
				}
				run.AcquireGroups(ctx, groups)
				if calls := len(run.plan(groups)); calls != 1 {
					t.Fatalf("the keys went in %d calls, want 1", calls)
				}
				for i, g := range groups {
					if i == squatted {
						if g.Err == nil || !strings.Contains(g.Err.Error(), "WRONGTYPE") {
							t.Fatalf("round %d: the string key: %v, want WRONGTYPE", round, g.Err)
						}
						continue
					}
					want := make([]keystate.Result, len(g.Items))
					for r := range g.Items {
						twins[i].Acquire(now, &g.Items[r], &want[r])
					}
					if g.Err != nil || fmt.Sprint(g.Results) != fmt.Sprint(want) {
						t.Fatalf("round %d, %s (%s, %d requests): lua %+v (%v)\n go %+v", round, g.Key, cases[i%len(cases)].name, len(g.Items), g.Results, g.Err, want)
					}
				}
			}
			if shared == 0 {
				t.Fatal("no key shared the previous key's requests")
			}
		})
	}
}

// The limits the fast path's tests decide, and the states they leave.
var (
	fastPacing = srl.PerSecond(5).WithBurst(3)
	fastOther  = srl.PerMinute(50)
)

// stateCase leaves a key in some state, deciding with do and observing
// with observe.
type stateCase struct {
	name    string
	prepare func(do func(keystate.Item), observe func(srl.Observation))
}

// stateCases are the states a fast path must defer to (all but "empty"
// and "its own TAT" hold more than plain TATs).
func stateCases() []stateCase {
	pacing, other := fastPacing, fastOther
	spent := srl.Observation{Quotas: []srl.QuotaObservation{{Unit: srl.UnitRequests, Limit: 10, Remaining: 0, Reset: 30 * time.Second}}, Succeeded: true}
	refused := srl.Observation{Limited: true, RetryAfter: 5 * time.Second}
	lots := srl.Observation{Quotas: []srl.QuotaObservation{{Unit: srl.UnitRequests, Limit: 1000, Remaining: 1, Reset: time.Minute}}, Succeeded: true}
	return []stateCase{
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
}

// preparers return a stateCase's do and observe for key at now: each
// decides or observes on the script and on twin, and fails t unless the
// two agree.
func preparers(t *testing.T, run *Runner, key string, twin *keystate.State, now int64) (func(keystate.Item), func(srl.Observation)) {
	t.Helper()
	ctx := context.Background()
	do := func(it keystate.Item) {
		t.Helper()
		var want keystate.Result
		twin.Acquire(now, &it, &want)
		if got, err := acquireOne(ctx, run, key, it); err != nil || got != want {
			t.Fatalf("preparing %s: lua %+v (%v)\n go %+v", key, got, err, want)
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
			t.Fatalf("preparing %s: lua %+v (%v)\n go %+v", key, got, err, want)
		}
	}
	return do, observe
}

// emptied flushes rdb and returns a Runner on it whose clock reads *now,
// which starts at fuzzEpoch.
func emptied(t *testing.T, rdb *redis.Client) (*Runner, *int64) {
	t.Helper()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	now := new(int64)
	*now = fuzzEpoch
	return NewRunner(rdb, func() time.Time { return time.UnixMicro(*now) }), now
}

// fastBackends is miniredis and, when installed, a real redis-server.
func fastBackends(t *testing.T) map[string]*redis.Client {
	t.Helper()
	backends := map[string]*redis.Client{}
	_, backends["miniredis"] = fuzzBackend(t)
	if bin, err := exec.LookPath("redis-server"); err == nil && !testing.Short() {
		backends["redis-server"] = startRedis(t, bin)
	}
	return backends
}
