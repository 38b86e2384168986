package scripts

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// The limits operations pick from: odd periods and bursts, so that
// rounding and burst arithmetic are exercised, and window limits beside the
// pacing ones (one whose period does not divide into its sub-windows, one
// shorter than a clock step, one a request of cost 3 exceeds).
var palette = []srl.Limit{
	srl.PerSecond(3).WithBurst(2),
	srl.Every(7, 10*time.Second),
	srl.PerMinute(5).WithBurst(5),
	{Rate: 2, Period: 1503 * time.Microsecond, Burst: 3},
	srl.Window(4, time.Second),
	srl.Window(9, 10*time.Second+3*time.Microsecond),
	srl.Window(3, 1503*time.Microsecond),
	srl.Window(2, time.Minute),
}

var fuzzEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// miniredis is started once per fuzz process and flushed per input.
var (
	fuzzOnce  sync.Once
	fuzzMini  *miniredis.Miniredis
	fuzzRedis *redis.Client
)

func fuzzBackend(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	fuzzOnce.Do(func() {
		fuzzMini = miniredis.NewMiniRedis()
		if err := fuzzMini.Start(); err != nil {
			panic(err)
		}
		fuzzRedis = redis.NewClient(&redis.Options{Addr: fuzzMini.Addr()})
	})
	fuzzMini.FlushAll()
	return fuzzMini, fuzzRedis
}

// acquireOne decides a single request in its own script call.
func acquireOne(ctx context.Context, run *Runner, key string, it keystate.Item) (keystate.Result, error) {
	var out [1]keystate.Result
	err := run.AcquireGroup(ctx, key, []keystate.Item{it}, out[:])
	return out[0], err
}

// item compiles a valid request.
func item(r srl.Request) keystate.Item {
	all, nFixed := keystate.CompileRequest(nil, r.Limits, r.DefaultLimits)
	return keystate.Item{
		N: int64(r.N), MaxWait: min(r.MaxWait, srl.MaxReservation).Microseconds(), All: all, NFixed: nFixed,
		Costs: keystate.CompileCosts(nil, r.Costs), Probe: r.Probe.Microseconds(),
	}
}

// bytesReader hands out bytes, then zeros once the input is spent.
type bytesReader struct{ b []byte }

func (r *bytesReader) next() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *bytesReader) u16() int64 { return int64(r.next())<<8 | int64(r.next()) }

// request decodes an acquire request for key: a cost, limits, a
// reservation bound, maybe a cost in tokens and a probe lease.
func (r *bytesReader) request(key string) srl.Request {
	req := srl.Request{
		Key:           key,
		N:             1 + int(r.next()%3),
		Limits:        r.limits(r.next()),
		DefaultLimits: r.limits(r.next()),
		MaxWait:       time.Duration(r.next()) * 7013 * time.Microsecond,
	}
	if extra := r.next(); extra&1 != 0 {
		req.Costs = []srl.Cost{{Unit: srl.UnitTokens, N: int(extra >> 1)}}
	} else if extra&2 != 0 {
		req.Probe = time.Duration(extra>>2) * 30011 * time.Microsecond
	}
	return req
}

// observation decodes an observation: a quota in requests, tokens or both
// (with odd limits, windows and slack), a server date that moves around
// the simulated clock, a Retry-After, and the response's flags.
func (r *bytesReader) observation(now int64) srl.Observation {
	quota := func(unit string) srl.QuotaObservation {
		return srl.QuotaObservation{
			Unit:       unit,
			Limit:      int(r.next()) * int(r.next()&1),
			Remaining:  int(r.next()),
			Reset:      time.Duration(r.u16()) * 3001 * time.Microsecond,
			Window:     time.Duration(r.next()) * time.Second * time.Duration(r.next()&1),
			ResetSlack: time.Duration(r.next()&3) * 500 * time.Millisecond,
		}
	}
	var o srl.Observation
	switch units := r.next() % 4; units {
	case 1:
		o.Quotas = []srl.QuotaObservation{quota(srl.UnitRequests)}
	case 2:
		o.Quotas = []srl.QuotaObservation{quota(srl.UnitTokens)}
	case 3:
		o.Quotas = []srl.QuotaObservation{quota(srl.UnitRequests), quota(srl.UnitTokens)}
	}
	if d := r.next(); d != 0 {
		o.Date = time.UnixMicro(now).Add(time.Duration(int(d)-128) * 250 * time.Millisecond)
	}
	o.RetryAfter = time.Duration(r.next()) * 211 * time.Millisecond * time.Duration(r.next()&1)
	flags := r.next()
	o.Limited, o.Succeeded, o.Bare = flags&1 != 0, flags&2 != 0, flags&4 != 0
	if flags&8 != 0 {
		o.Charged = append(o.Charged, srl.Charge{Unit: srl.UnitRequests, N: 1 + int(flags>>6), Mark: int64(r.next())})
	}
	if flags&16 != 0 {
		o.Charged = append(o.Charged, srl.Charge{Unit: srl.UnitTokens, N: int(r.next()), Mark: int64(r.next())})
	}
	if flags&32 != 0 {
		o.Refunded = append(o.Refunded, srl.Cost{Unit: srl.UnitTokens, N: int(r.next())}, srl.Cost{Unit: srl.UnitRequests, N: 1})
	}
	return o
}

func (r *bytesReader) limits(mask byte) []srl.Limit {
	var ls []srl.Limit
	for i, l := range palette {
		if mask&(1<<i) != 0 {
			ls = append(ls, l)
		}
	}
	return ls
}

// FuzzDifferential decodes a random sequence of operations (acquire with
// various costs, limits and reservations; observe with random headers;
// status; reset; clock steps forward and backward) and runs it against the
// Lua scripts (on miniredis, in client-time mode so that both sides read
// the same clock) and the Go state machine, failing on the first reply
// that differs.
//
//	go test -run '^$' -fuzz FuzzDifferential -fuzztime 5m ./internal/scripts/
//
// fuzzSeeds are the differential test's seed inputs.
var fuzzSeeds = [][]byte{
	{0, 0, 1, 0x01, 0, 0, 0, 0, 1, 0x01, 0},
	{1, 0, 10, 3, 0, 30, 0, 0, 0, 0, 0, 0, 1, 0x0f, 0, 0, 0, 1, 0x0f, 0x0f, 9},
	{3, 0x80, 0x10, 0, 1, 2, 0x05, 0x02, 50, 2, 0, 3, 0x7f, 0xff, 0, 0, 1, 0x08, 0, 0},
	{1, 1, 0, 0, 0, 0, 0, 0, 0, 5, 1, 0, 1, 3, 0x0a, 0, 4, 1, 2, 1},
	{0, 5, 3, 0, 0x03, 0, 0, 1, 0x01, 0x04, 9, 2, 0x0f, 0, 0, 1, 6, 2, 0, 0x02, 0, 3, 1, 0x08, 0x01, 1, 0, 0, 0x0f, 0x0f, 0},
	// Window limits: bursts into a refusal, a clock step, a mix with
	// pacing limits and a quota, a status, a group.
	{0, 0, 1, 0x10, 0, 0, 0, 0, 0, 1, 0x10, 0, 0, 0, 0, 0, 1, 0x10, 0, 0, 0, 0, 3, 0x40, 0x80, 0, 0, 0, 0x70, 0x80, 5, 0, 0, 2},
	{1, 0, 0, 0x31, 0xc0, 9, 0, 1, 1, 1, 20, 0, 0x10, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0xf0, 0x0f, 3, 1, 1, 5, 3, 0, 0x50, 0, 0, 1, 0x20, 0x40, 0, 0, 2, 0x80, 0, 0, 1, 2},
	{0, 6, 2, 2, 0xff, 0, 50, 0, 1, 0x40, 0x80, 0, 0, 0, 0x30, 0, 0, 3, 0x3f, 0xf0, 0, 6, 3, 0, 0xf0, 0, 0, 0, 0x11, 0x22, 0, 2, 0, 2},
}

func FuzzDifferential(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(differential)
}

// differential runs one decoded operation sequence on both sides.
func differential(t *testing.T, data []byte) {
	_, rdb := fuzzBackend(t)
	differentialOn(t, rdb, data)
}

// differentialOn is differential on rdb, which holds no fuzz keys.
func differentialOn(t *testing.T, rdb *redis.Client, data []byte) {
	now := fuzzEpoch
	run := NewRunner(rdb, func() time.Time { return time.UnixMicro(now) })
	ctx := context.Background()
	keys := [2]string{"fuzz{a}", "fuzz{b}"}
	var twins [2]keystate.State
	in := &bytesReader{b: data}
	for step := 0; len(in.b) > 0 && step < 64; step++ {
		k := int(in.next() & 1)
		key, twin := keys[k], &twins[k]
		switch kind := in.next() % 7; kind {
		case 5, 6:
			// A group of requests in one script call (5), or groups for both
			// keys in one pipeline (6): each must equal its request decided
			// alone, in order.
			groups := []Group{{Key: key}}
			twinsOf := []*keystate.State{twin}
			if kind == 6 {
				groups = append(groups, Group{Key: keys[1-k]})
				twinsOf = append(twinsOf, &twins[1-k])
			}
			var want [][]keystate.Result
			for gi := range groups {
				var rs []keystate.Result
				for j := 0; j < 1+int(in.next()%4); j++ {
					r := in.request(key)
					if r.Validate() != nil {
						continue
					}
					it := item(r)
					groups[gi].Items = append(groups[gi].Items, it)
					var res keystate.Result
					twinsOf[gi].Acquire(now, &it, &res)
					rs = append(rs, res)
				}
				want = append(want, rs)
			}
			if kind == 5 {
				if len(groups[0].Items) == 0 {
					continue
				}
				got := make([]keystate.Result, len(groups[0].Items))
				if err := run.AcquireGroup(ctx, key, groups[0].Items, got); err != nil {
					t.Fatalf("step %d group: %v", step, err)
				}
				groups[0].Results = got
			} else {
				kept := groups[:0]
				keptWant := want[:0]
				for gi, g := range groups {
					if len(g.Items) > 0 {
						kept = append(kept, g)
						keptWant = append(keptWant, want[gi])
					}
				}
				groups, want = kept, keptWant
				run.AcquireGroups(ctx, groups)
			}
			for gi, g := range groups {
				if g.Err != nil {
					t.Fatalf("step %d group %d: %v", step, gi, g.Err)
				}
				for j := range want[gi] {
					if g.Results[j] != want[gi][j] {
						t.Fatalf("step %d group %d request %d at %d:\n lua %+v\n go  %+v", step, gi, j, now-fuzzEpoch, g.Results[j], want[gi][j])
					}
				}
			}
		case 0:
			r := in.request(key)
			if r.Validate() != nil {
				continue
			}
			it := item(r)
			var want keystate.Result
			twin.Acquire(now, &it, &want)
			got, err := acquireOne(ctx, run, key, it)
			if err != nil {
				t.Fatalf("step %d acquire %+v: %v", step, r, err)
			}
			if got != want {
				t.Fatalf("step %d acquire %+v at %d:\n lua %+v\n go  %+v", step, r, now-fuzzEpoch, got, want)
			}
		case 1:
			// One observation, or up to four in one call: the call must
			// equal the twin merging each in turn.
			params := keystate.Params(keystate.DefaultBackoffBase, keystate.DefaultBackoffMax)
			var batch []keystate.Obs
			var want keystate.ObserveResult
			for j := 0; j < 1+int(in.next()%4); j++ {
				o, err := in.observation(now).Normalize()
				if err != nil || o.IsZero() {
					continue
				}
				batch = append(batch, keystate.ObsFrom(o))
				want, _ = twin.Observe(now, batch[len(batch)-1], params)
			}
			if len(batch) == 0 {
				continue
			}
			got, err := run.ObserveMany(ctx, key, batch, params)
			if err != nil {
				t.Fatalf("step %d observe %+v: %v", step, batch, err)
			}
			if got != want {
				t.Fatalf("step %d observe %+v at %d:\n lua %+v\n go  %+v", step, batch, now-fuzzEpoch, got, want)
			}
		case 2:
			all, _ := keystate.CompileRequest(nil, palette, nil)
			gotNow, got, err := run.Status(ctx, key, all)
			if err != nil {
				t.Fatalf("step %d status: %v", step, err)
			}
			if gotNow != now || !sameState(now, got, *twin, all) {
				t.Fatalf("step %d status at %d:\n lua %+v\n go  %+v", step, now-fuzzEpoch, got, *twin)
			}
		case 3:
			now += (in.u16() - 0x4000) * 997
		case 4:
			if err := rdb.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			*twin = keystate.State{}
		}
	}
}

// sameState compares what status.lua can see: the scalars, the quotas and
// the TATs of the given limits. Both sides roll their quotas to now first:
// the twin rolls them in memory on every call, the script only when it
// writes, and rolling is idempotent.
func sameState(now int64, lua, twin keystate.State, limits []keystate.Limit) bool {
	if lua.BlockedUntil != twin.BlockedUntil || lua.Throttles != twin.Throttles ||
		lua.ProbeUntil != twin.ProbeUntil || lua.BareUntil != twin.BareUntil ||
		lua.Admitted != twin.Admitted || lua.AdmittedSince != twin.AdmittedSince || lua.Refused != twin.Refused {
		return false
	}
	l, g := lua.Status(now, "", limits, len(limits)), twin.Status(now, "", limits, len(limits))
	if !reflect.DeepEqual(l, g) {
		return false
	}
	for _, l := range limits {
		if lua.TAT(l) != twin.TAT(l) {
			return false
		}
		lw, lok := lua.Window(l)
		gw, gok := twin.Window(l)
		if lok != gok || lw != gw {
			return false
		}
	}
	return true
}

// TestDifferentialScenario is a readable run of the same comparison over a
// scripted day of traffic, so the plain test run exercises every script
// path even without the fuzz corpus.
func TestDifferentialScenario(t *testing.T) {
	_, rdb := fuzzBackend(t)
	now := fuzzEpoch
	run := NewRunner(rdb, func() time.Time { return time.UnixMicro(now) })
	ctx := context.Background()
	var twin keystate.State
	for i := 0; i < 400; i++ {
		switch i % 7 {
		case 3:
			o, _ := srl.Observation{
				Limit: 40, Remaining: 40 - i%41, Reset: time.Duration(60-i%60) * time.Second, Limited: i%21 == 3,
				Date: time.UnixMicro(now).Add(time.Duration(i%5-2) * time.Second), Succeeded: i%21 != 3,
				Quotas: []srl.QuotaObservation{{Unit: srl.UnitTokens, Limit: 9000, Remaining: 9000 - 20*i, Reset: time.Duration(i%30+1) * time.Second}},
			}.Normalize()
			obs, params := keystate.ObsFrom(o), keystate.Params(keystate.DefaultBackoffBase, keystate.DefaultBackoffMax)
			batch := []keystate.Obs{obs}
			if i%2 == 1 {
				// A deferred batch: a settled success before this one.
				earlier, _ := srl.Observation{
					Limit: 40, Remaining: 41 - i%41, Reset: time.Duration(60-i%60) * time.Second, Succeeded: true,
					Date: time.UnixMicro(now).Add(-time.Second), Charged: []srl.Charge{{Unit: srl.UnitRequests, N: 1}},
				}.Normalize()
				batch = append([]keystate.Obs{keystate.ObsFrom(earlier)}, batch...)
			}
			var want keystate.ObserveResult
			for _, o := range batch {
				want, _ = twin.Observe(now, o, params)
			}
			got, err := run.ObserveMany(ctx, "scenario", batch, params)
			if err != nil || got != want {
				t.Fatalf("observe %d: lua %+v (%v), go %+v", i, got, err, want)
			}
		default:
			it := item(srl.Request{
				Key: "scenario", N: 1 + i%2, Limits: []srl.Limit{palette[0], palette[1], palette[4]},
				DefaultLimits: []srl.Limit{palette[2], palette[3], palette[5], palette[6], palette[7]},
				MaxWait:       time.Duration(i%5) * 100 * time.Millisecond,
				Costs:         []srl.Cost{{Unit: srl.UnitTokens, N: i % 50}}, Probe: time.Duration(i%3) * 50 * time.Millisecond,
			})
			var want keystate.Result
			twin.Acquire(now, &it, &want)
			got, err := acquireOne(ctx, run, "scenario", it)
			if err != nil || got != want {
				t.Fatalf("acquire %d: lua %+v (%v), go %+v", i, got, err, want)
			}
			gotNow, st, err := run.Status(ctx, "scenario", it.All)
			if err != nil || gotNow != now || !sameState(now, st, twin, it.All) {
				t.Fatalf("status %d: lua %+v (%v), go %+v", i, st, err, twin)
			}
		}
		now += int64(i%13)*137_111 - 300_000
	}
	if fmt.Sprint(twin.TATs) == "[]" || len(twin.Windows) == 0 {
		t.Fatal("the scenario never admitted anything")
	}
}

// TestDifferentialFieldBound gives one key far more limits than it may
// hold, of both kinds, beside two it uses throughout, with the clock
// moving so that some fields go stale and then standing still so that none
// does: the scripts and the twin must drop
// the same fields (the bound's whole path, HGETALL included), keep the
// limits in use, and decide alike.
func TestDifferentialFieldBound(t *testing.T) {
	_, rdb := fuzzBackend(t)
	now := fuzzEpoch
	run := NewRunner(rdb, func() time.Time { return time.UnixMicro(now) })
	ctx := context.Background()
	var twin keystate.State
	// The short window in use is the field closest to going stale while
	// the clock stands still: only being in use keeps it.
	inUse := []srl.Limit{srl.Window(400, 2*time.Second), srl.PerSecond(30).WithBurst(200), srl.Window(500, 10*time.Millisecond)}
	for i := 0; i < 600; i++ {
		frozen := i >= 200 && i < 300
		made := srl.Window(1+i, time.Duration(1+i%7)*time.Second)
		if i%3 == 0 && !frozen {
			made = srl.Every(1+i, time.Duration(1+i%5)*time.Second)
		}
		r := srl.Request{Key: "bound", N: 1, Limits: inUse, DefaultLimits: []srl.Limit{made}}
		if i%4 == 1 {
			// A group: the made-up limit alone, then with the ones in use.
			r2 := srl.Request{Key: "bound", N: 1, Limits: []srl.Limit{made}}
			items := []keystate.Item{item(r2), item(r)}
			want := make([]keystate.Result, 2)
			for j := range items {
				twin.Acquire(now, &items[j], &want[j])
			}
			got := make([]keystate.Result, 2)
			if err := run.AcquireGroup(ctx, "bound", items, got); err != nil || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("group %d: lua %+v (%v), go %+v", i, got, err, want)
			}
		} else {
			it := item(r)
			var want keystate.Result
			twin.Acquire(now, &it, &want)
			got, err := acquireOne(ctx, run, "bound", it)
			if err != nil || got != want {
				t.Fatalf("acquire %d: lua %+v (%v), go %+v", i, got, err, want)
			}
		}
		all, _ := keystate.CompileRequest(nil, inUse, []srl.Limit{made})
		gotNow, st, err := run.Status(ctx, "bound", all)
		if err != nil || gotNow != now || !sameState(now, st, twin, all) {
			t.Fatalf("status %d: lua %+v (%v), go %+v", i, st, err, twin)
		}
		fields, err := rdb.HKeys(ctx, "bound").Result()
		if err != nil {
			t.Fatal(err)
		}
		var inRedis, inTwin []string
		for _, f := range fields {
			if strings.HasPrefix(f, "g:") || strings.HasPrefix(f, "w:") {
				inRedis = append(inRedis, f)
			}
		}
		for _, x := range twin.TATs {
			inTwin = append(inTwin, x.Limit.Field())
		}
		for _, w := range twin.Windows {
			inTwin = append(inTwin, w.Limit.Field())
		}
		slices.Sort(inRedis)
		slices.Sort(inTwin)
		if !slices.Equal(inRedis, inTwin) || len(inRedis) > keystate.MaxLimitFields {
			t.Fatalf("step %d: limit fields in Redis %v, in the twin %v, bound %d", i, inRedis, inTwin, keystate.MaxLimitFields)
		}
		if frozen {
			// The clock stands still: nothing goes stale, so the bound
			// drops the field closest to going stale.
			continue
		}
		now += int64(i%11) * 41_017
	}
}

// TestGarbageWindowValues stores values the rules never write in a window
// field and decides on them with the script and with the twin fed what
// Status decodes: both must read them alike (a value that does not parse
// counts nothing, counts are bounded by the rate, counts ahead of now count
// as now's) and no reply may carry a negative wait.
func TestGarbageWindowValues(t *testing.T) {
	mr, rdb := fuzzBackend(t)
	now := fuzzEpoch + 123_457
	run := NewRunner(rdb, func() time.Time { return time.UnixMicro(now) })
	ctx := context.Background()
	l := srl.Window(5, time.Second)
	c := keystate.Compile(l)
	sub := now / c.Interval
	values := []string{
		"", " ", "x", "-5 3", "5 -3", "5 3.0", "5\t3", "99999999999999999 1", "9999999999999999 9999999999999999",
		fmt.Sprint(sub), fmt.Sprint(sub, " 0"), fmt.Sprint(sub, " 4"), fmt.Sprint(sub, " 2 2 2"), fmt.Sprint(sub-3, " 1 1 1 1 1"),
		fmt.Sprint(sub-10, " 1 0 0 0 0 0 0 0 0 0 5 garbage"), fmt.Sprint(sub-10, " 1 0 0 0 0 0 0 0 0 0 5 99999999999999999"),
		fmt.Sprint(sub-11, " 5"), fmt.Sprint(sub+1_000_000, " 4"),
		fmt.Sprint(sub, " 1 1 1 1 1 1 1 1 1 1 1 1 1 1"), strings.Repeat("7 ", 10_000),
	}
	for _, v := range values {
		for _, n := range []int{1, 3} {
			mr.FlushAll()
			key := "garbage"
			if err := rdb.HSet(ctx, key, c.Field(), v).Err(); err != nil {
				t.Fatal(err)
			}
			it := item(srl.Request{Key: key, N: n, Limits: []srl.Limit{l, srl.PerSecond(10)}})
			_, twin, err := run.Status(ctx, key, it.All)
			if err != nil {
				t.Fatalf("status on %q: %v", v, err)
			}
			var want keystate.Result
			twin.Acquire(now, &it, &want)
			got, err := acquireOne(ctx, run, key, it)
			if err != nil || got != want {
				t.Fatalf("%q, cost %d: lua %+v (%v), go %+v", v, n, got, err, want)
			}
			if got.Wait > c.Slots*c.Interval {
				t.Fatalf("%q: a wait of %dµs, past the window's span", v, got.Wait)
			}
			_, after, err := run.Status(ctx, key, it.All)
			if err != nil || !sameState(now, after, twin, it.All) {
				t.Fatalf("%q, cost %d: stored %+v (%v), twin %+v", v, n, after, err, twin)
			}
		}
	}
}
