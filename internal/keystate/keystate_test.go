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
	}
	for _, tc := range tests {
		if got := Compile(tc.l).Field(); got != tc.want {
			t.Errorf("Field of %v = %q, want %q", tc.l, got, tc.want)
		}
	}
}

func TestCompileRequestDedupes(t *testing.T) {
	a, b := srl.PerSecond(1), srl.PerMinute(10)
	fixed, defaults := CompileRequest(nil, nil,
		[]srl.Limit{a, b, a, a.WithBurst(1)},
		[]srl.Limit{a, srl.PerHour(5), srl.PerHour(5), b.WithBurst(2)})
	if len(fixed) != 2 || len(defaults) != 2 {
		t.Fatalf("fixed %v, defaults %v: want 2 and 2 after dropping repeats", fixed, defaults)
	}
	if defaults[0] != Compile(srl.PerHour(5)) || defaults[1] != Compile(b.WithBurst(2)) {
		t.Fatalf("defaults %v", defaults)
	}
}

// A zero-allocation allowed path is what lets the in-memory twin sit on the
// hot path during an outage.
func TestAcquireAllocatesNothingOnceWarm(t *testing.T) {
	var s State
	var fb, db [4]Limit
	fixed, defaults := CompileRequest(fb[:], db[:], []srl.Limit{srl.PerSecond(1_000_000)}, []srl.Limit{srl.PerHour(3_600_000)})
	now := int64(1_700_000_000_000_000)
	s.Acquire(now, 1, 0, fixed, defaults)
	allocs := testing.AllocsPerRun(1000, func() {
		now += 1000
		s.Acquire(now, 1, 0, fixed, defaults)
	})
	if allocs != 0 {
		t.Fatalf("Acquire allocates %v times per call", allocs)
	}
}
