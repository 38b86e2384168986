package keystate

import (
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

func TestFloorDiv(t *testing.T) {
	tests := []struct{ a, b, want int64 }{
		{7, 2, 3}, {-7, 2, -4}, {-8, 2, -4}, {0, 5, 0}, {-1, 1000, -1}, {999, 1000, 0},
	}
	for _, tc := range tests {
		if got := FloorDiv(tc.a, tc.b); got != tc.want {
			t.Errorf("FloorDiv(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		l    srl.Limit
		want string
	}{
		{srl.PerMinute(60), "g:60:60000000"},
		{srl.PerSecond(5).WithBurst(10), "g:5:1000000:10"},
		{srl.Limit{Rate: 2, Period: 1500 * time.Nanosecond}, "g:2:2"},
		{srl.Window(10, time.Second), "w:10:1000000"},
		{srl.Window(10, time.Second).WithBurst(1), "w:10:1000000"},
	}
	for _, tc := range tests {
		if got := Compile(tc.l).Field(); got != tc.want {
			t.Errorf("Field of %v = %q, want %q", tc.l, got, tc.want)
		}
	}
}

func TestCompileRequestDedupes(t *testing.T) {
	a, b := srl.PerSecond(1), srl.PerMinute(10)
	all, nFixed := CompileRequest(nil,
		[]srl.Limit{a, b, a, a.WithBurst(1)},
		[]srl.Limit{a, srl.PerHour(5), srl.PerHour(5), b.WithBurst(2)})
	if nFixed != 2 || len(all) != 4 {
		t.Fatalf("%v with %d fixed: want 2 fixed and 2 defaults after dropping repeats", all, nFixed)
	}
	if all[2] != Compile(srl.PerHour(5)) || all[3] != Compile(b.WithBurst(2)) {
		t.Fatalf("defaults %v", all[nFixed:])
	}
	if got := Applicable(all, nFixed, true); len(got) != 2 {
		t.Fatalf("with a known quota %d limits apply, want the 2 fixed", len(got))
	}
}

// A zero-allocation allowed path is what lets the in-memory twin sit on the
// hot path during an outage.
func TestAcquireAllocatesNothingOnceWarm(t *testing.T) {
	var s State
	var buf [8]Limit
	var r Result
	all, nFixed := CompileRequest(buf[:], []srl.Limit{srl.PerSecond(1_000_000), srl.Window(1_000_000, time.Second)}, []srl.Limit{srl.PerHour(3_600_000)})
	it := Item{N: 1, All: all, NFixed: nFixed, Probe: 1000}
	now := int64(1_700_000_000_000_000)
	s.Observe(now, Obs{Quotas: []QuotaObs{{Unit: srl.UnitRequests, Limit: 1 << 30, Remaining: 1 << 30, Reset: 1 << 40}}}, Params(time.Second, time.Minute))
	s.Acquire(now, &it, &r)
	allocs := testing.AllocsPerRun(1000, func() {
		now += 1000
		s.Acquire(now, &it, &r)
	})
	if allocs != 0 {
		t.Fatalf("Acquire allocates %v times per call", allocs)
	}
}

// TestPrepareAgreesWithValidate: the fused fast path accepts exactly what
// Request.Validate accepts, and compiles what CompileRequest compiles.
func TestPrepareAgreesWithValidate(t *testing.T) {
	limits := []srl.Limit{
		srl.PerSecond(10), srl.PerMinute(60).WithBurst(10), {Rate: 1, Period: time.Microsecond},
		{Rate: 0, Period: time.Second}, {Rate: -1, Period: time.Second}, {Rate: 1, Period: 999},
		{Rate: 1, Period: srl.MaxSpan}, {Rate: 1, Period: srl.MaxSpan + 1}, {Rate: 1, Period: time.Second, Burst: -1},
		srl.PerSecond(1_000_000), srl.PerSecond(1_000_001), srl.PerHour(1).WithBurst(87_600), srl.PerHour(1).WithBurst(87_601),
		{Rate: 1, Period: time.Second, Burst: 1 << 62}, {Rate: 3, Period: 10 * time.Second, Burst: 5},
		srl.Window(10, time.Second), srl.Window(1, time.Microsecond), srl.Window(2, time.Microsecond),
		srl.Window(5, time.Minute).WithBurst(1), srl.Window(5, time.Minute).WithBurst(2), srl.Window(0, time.Second),
		srl.Window(1, srl.MaxSpan), srl.Window(1, srl.MaxSpan+1), srl.Window(3, 999), {Rate: 3, Period: time.Second, Kind: 7},
	}
	for _, n := range []int{-1, 0, 1, 2, 5, 10, 11} {
		for i, a := range limits {
			for _, b := range limits[i:] {
				for _, key := range []string{"", "k"} {
					for _, maxWait := range []time.Duration{-1, 0, time.Second, srl.MaxSpan + 1} {
						r := srl.Request{Key: key, N: n, Limits: []srl.Limit{a}, DefaultLimits: []srl.Limit{b, a}, MaxWait: maxWait}
						all, nFixed, err := Prepare(nil, r)
						want := r.Validate()
						if (err == nil) != (want == nil) || (err != nil && err.Error() != want.Error()) {
							t.Fatalf("%+v: Prepare error %v, Validate %v", r, err, want)
						}
						if err != nil {
							continue
						}
						wantAll, wantFixed := CompileRequest(nil, r.Limits, r.DefaultLimits)
						if nFixed != wantFixed || len(all) != len(wantAll) {
							t.Fatalf("%+v: Prepare %v/%d, CompileRequest %v/%d", r, all, nFixed, wantAll, wantFixed)
						}
						for i := range all {
							if all[i] != wantAll[i] {
								t.Fatalf("%+v: Prepare %v, CompileRequest %v", r, all, wantAll)
							}
						}
					}
				}
			}
		}
	}
}

// TestArgsCacheIsBounded makes up more limits than the cache keeps: each
// still gets its own arguments, and the cache stops at its bound.
func TestArgsCacheIsBounded(t *testing.T) {
	for i := 1; i <= 2*maxCachedArgs; i++ {
		l := Compile(srl.Limit{Rate: i, Period: time.Hour})
		a := l.Args()
		if a[0] != l.field() || a[1] != l.Kind || a[2] != l.Interval || a[3] != l.Burst || a[4] != l.Period {
			t.Fatalf("Args of %+v = %v", l, *a)
		}
	}
	if n := argsCached.Load(); n > maxCachedArgs {
		t.Fatalf("%d limits cached, want at most %d", n, maxCachedArgs)
	}
}
