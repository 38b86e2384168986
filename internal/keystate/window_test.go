package keystate

import (
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

func TestWindowGeometry(t *testing.T) {
	tests := []struct {
		l           srl.Limit
		sub, slots  int64
		description string
	}{
		{srl.Window(10, time.Second), 100_000, 11, "a tenth of the period, and the one holding now"},
		{srl.Window(60, time.Minute), 6_000_000, 11, "minutes"},
		{srl.Window(3, 1503*time.Microsecond), 151, 11, "a period that does not divide: sub-windows rounded up"},
		{srl.Window(1, time.Microsecond), 1, 2, "the shortest period"},
		{srl.Window(5, 7*time.Microsecond), 1, 8, "fewer microseconds than sub-windows"},
		{srl.Window(2, 1500*time.Nanosecond), 1, 3, "a period rounded up to 2µs"},
	}
	for _, tc := range tests {
		c := Compile(tc.l)
		if c.Kind != KindWindow || c.Interval != tc.sub || c.Slots != tc.slots || c.Burst != c.Rate {
			t.Errorf("%s: %v compiles to %+v, want sub-window %dµs and %d slots", tc.description, tc.l, c, tc.sub, tc.slots)
		}
		// The counted span covers every window of one period: the proof of
		// the bound needs ⌈Period/Interval⌉ ≤ Slots − 1.
		if (c.Slots-1)*c.Interval < c.Period || c.Slots > MaxSlots {
			t.Errorf("%v: %d slots of %dµs do not cover the period %dµs", tc.l, c.Slots-1, c.Interval, c.Period)
		}
	}
}

func TestWindowCodec(t *testing.T) {
	l := Compile(srl.Window(9, time.Second)) // 11 slots
	full := Window{Limit: l, Newest: 17_000_000_000, Counts: [MaxSlots]int64{1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3}}
	tests := []struct {
		name string
		w    Window
		want string
	}{
		{"one count", Window{Limit: l, Newest: 5, Counts: [MaxSlots]int64{4}}, "5 4"},
		{"trailing zeros trimmed", Window{Limit: l, Newest: 5, Counts: [MaxSlots]int64{4, 0, 1}}, "5 4 0 1"},
		{"nothing counted keeps one", Window{Limit: l, Newest: 5}, "5 0"},
		{"every slot", full, "17000000000 1 0 2 0 0 0 0 0 0 0 3"},
	}
	for _, tc := range tests {
		got := EncodeWindow(&tc.w)
		if got != tc.want {
			t.Errorf("%s: EncodeWindow = %q, want %q", tc.name, got, tc.want)
		}
		back, ok := DecodeWindow(l, got)
		if !ok || back != tc.w {
			t.Errorf("%s: DecodeWindow(%q) = %+v, %v; want %+v", tc.name, got, back, ok, tc.w)
		}
	}
}

// TestDecodeWindowGarbage: what the scripts accept, word by word, and what
// they refuse; a refused value counts nothing, and ClampRanges bounds what
// was accepted.
func TestDecodeWindowGarbage(t *testing.T) {
	l := Compile(srl.Window(9, time.Second)) // 11 slots
	tests := []struct {
		in     string
		ok     bool
		newest int64
		counts []int64 // after ClampRanges
	}{
		{"", false, 0, nil},
		{"   ", false, 0, nil},
		{"12", true, 12, nil},
		{"12 3 4", true, 12, []int64{3, 4}},
		{"12 3 4 5x", false, 0, nil},
		{" 12  3 4 ", true, 12, []int64{3, 4}},
		{"12 -3", false, 0, nil},
		{"12 3x", false, 0, nil},
		{"12 3.5", false, 0, nil},
		{"-12 3", false, 0, nil},
		{"12\t3", false, 0, nil},
		{"12 99999999999999999", false, 0, nil},
		{"12 9999999999999999", true, 12, []int64{9}},
		{"9999999999999999 1", true, (1 << 53) / 100_000, []int64{1}},
		{"1 1 1 1 1 1 1 1 1 1 1 1 99999999999999999", true, 1, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"1 1 1 1 1 1 1 1 1 1 1 1 garbage past the slots", true, 1, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"1 1 1 1 1 1 1 1 1 1 1 99999999999999999", false, 0, nil},
	}
	for _, tc := range tests {
		w, ok := DecodeWindow(l, tc.in)
		if ok != tc.ok {
			t.Errorf("DecodeWindow(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		st := State{Windows: []Window{w}}
		st.ClampRanges()
		w = st.Windows[0]
		var want [MaxSlots]int64
		copy(want[:], tc.counts)
		if w.Newest != tc.newest || w.Counts != want {
			t.Errorf("DecodeWindow(%q) clamped = %d %v, want %d %v", tc.in, w.Newest, w.Counts, tc.newest, want)
		}
	}
}

// TestWindowDecisions walks one window limit through a burst, a refusal
// whose wait ends exactly when the oldest sub-window leaves the span, and a
// clock stepped back.
func TestWindowDecisions(t *testing.T) {
	const sec = int64(time.Second / time.Microsecond)
	l := srl.Window(3, time.Second) // sub-windows of 100ms, 11 counted
	var s State
	base := int64(1_700_000_000) * sec
	steps := []struct {
		at        int64 // µs after base
		n         int64
		allowed   bool
		wait      int64
		remaining int64
	}{
		{0, 2, true, 0, 1},
		{50_000, 1, true, 0, 0},
		// Both sub-windows count until the first has left the span: at
		// 1.1s, the start of sub-window 11.
		{60_000, 1, false, 1_040_000, 0},
		{1_099_999, 2, false, 1, 0},
		{1_100_000, 2, true, 0, 1},
		// What the current sub-window holds counts for 11 of them.
		{1_100_000, 2, false, 1_100_000, 1},
		{1_150_000, 1, true, 0, 0},
		// The clock steps back a minute: what was counted counts as now's,
		// for no longer than the span.
		{-60 * sec, 1, false, 1_100_000, 0},
	}
	for i, st := range steps {
		it := Item{N: st.n, MaxWait: sec, All: []Limit{Compile(l)}, NFixed: 1}
		var r Result
		s.Acquire(base+st.at, &it, &r)
		if r.Allowed != st.allowed || r.Wait != st.wait || r.Remaining != st.remaining {
			t.Fatalf("step %d at %dµs: %+v, want allowed %v wait %d remaining %d", i, st.at, r, st.allowed, st.wait, st.remaining)
		}
		if !r.Allowed && r.Cause != CauseLimit {
			t.Fatalf("step %d: a window's refusal has cause %d", i, r.Cause)
		}
	}
}

// TestMakeRoomKeepsOwnLimits fills a key with MaxLimitFields fields of
// both kinds, then admits a request that uses the one closest to going
// stale and a new one: the request's own limit keeps its state, another
// field goes.
func TestMakeRoomKeepsOwnLimits(t *testing.T) {
	now := int64(1_700_000_000_000_000)
	var s State
	for i := 0; i < MaxLimitFields; i++ {
		l := srl.Window(1+i, time.Hour)
		if i%2 == 0 {
			l = srl.Every(1+i, time.Hour)
		}
		it := Item{N: 1, All: []Limit{Compile(l)}, NFixed: 1}
		var r Result
		if s.Acquire(now, &it, &r); !r.Allowed {
			t.Fatalf("limit %d refused: %+v", i, r)
		}
	}
	// Every(63, 1h) has the TAT closest to now: it would go first.
	own := Compile(srl.Every(63, time.Hour))
	if i := s.find(own); i < 0 || len(s.TATs)+len(s.Windows) != MaxLimitFields {
		t.Fatalf("%d TATs and %d windows; want %d fields, %v among them", len(s.TATs), len(s.Windows), MaxLimitFields, own)
	}
	fresh := Compile(srl.Window(1000, time.Hour))
	it := Item{N: 1, All: []Limit{own, fresh}, NFixed: 2}
	var r Result
	s.Acquire(now+own.Interval, &it, &r)
	if !r.Allowed {
		t.Fatalf("refused: %+v", r)
	}
	if n := len(s.TATs) + len(s.Windows); n != MaxLimitFields {
		t.Fatalf("%d fields after adding one to a full key, want %d", n, MaxLimitFields)
	}
	if s.find(own) < 0 || s.findWindow(fresh) < 0 {
		t.Fatalf("the request's own limits lost their state")
	}
	// The next closest to going stale went instead: Every(61, 1h).
	if s.find(Compile(srl.Every(61, time.Hour))) >= 0 {
		t.Fatalf("the field closest to going stale is still stored")
	}
}
