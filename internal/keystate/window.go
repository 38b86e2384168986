package keystate

import "strconv"

// A window limit admits at most Rate events in any window of length Period,
// bursts allowed. It counts its events in sub-windows of length
// Interval = ⌈Period/SubWindows⌉ µs, aligned on the epoch so that every
// process and script agrees on them, and a decision at now counts the
// sub-window that holds now and the Slots − 1 before it, where
// Slots = ⌈Period/Interval⌉ + 1:
//
//   - Never more than Rate in any window [t, t+Period): an admission at a
//     in it lies at most ⌈Period/Interval⌉ sub-windows after t's, so it
//     counted every earlier admission of the window, and it was admitted
//     only when all of them and its own cost fit in Rate.
//   - At most one sub-window of capacity lost: an event counts from its
//     admission until its whole sub-window has left the counted span, at
//     most Period + Interval later (plus under SubWindows µs when Period
//     does not divide evenly), so a caller that waits out every refusal
//     gets Rate per Period + Interval.
//
// The state is SubWindows + 1 counters at most; a refusal's wait is exact:
// the time at which enough of the oldest sub-windows have left the span for
// the request to fit.
//
// A window limit is never reserved: a reservation would spend a slot of a
// window that has not begun, which the counters cannot hold.

// SubWindows is how many sub-windows a window limit's Period is cut into:
// the capacity it may lose, one sub-window, is a tenth of the Period.
const SubWindows = 10

// MaxSlots bounds Limit.Slots: the counters one window limit keeps.
const MaxSlots = SubWindows + 1

// compileWindow is Compile for a window limit of rate events per period µs.
func compileWindow(rate, period int64) Limit {
	sub := (period + SubWindows - 1) / SubWindows
	return Limit{
		Kind: KindWindow, Rate: rate, Period: period, Burst: rate,
		Interval: sub, Slots: (period+sub-1)/sub + 1,
	}
}

// Window is a window limit's state: what was admitted in each of its last
// sub-windows.
type Window struct {
	Limit Limit
	// Newest is the index of the newest sub-window counted: the one that
	// holds the time t when t/Limit.Interval rounds down to it.
	Newest int64
	// Counts[i] is what was admitted in sub-window Newest − i, for i below
	// Limit.Slots; the rest are 0.
	Counts [MaxSlots]int64
}

// windowView is a window's counts as a decision at now sees them: Counts[i]
// is what sub-window B − i holds, where B holds now.
type windowView struct {
	B      int64
	Counts [MaxSlots]int64
	Count  int64 // their sum
}

// view aligns w's counts on now's sub-window. Counts stored ahead of now
// (the clock stepped back) are placed as if now's sub-window held them, so
// a clock step blocks a window for at most its own span, as a TAT is
// bounded; counts further back than the span have expired.
func (w *Window) view(now int64) windowView {
	l := w.Limit
	v := windowView{B: FloorDiv(now, l.Interval)}
	d := v.B - min(w.Newest, v.B)
	for i := int64(0); i+d < l.Slots; i++ {
		v.Counts[i+d] = w.Counts[i]
		v.Count += w.Counts[i]
	}
	return v
}

// windowAt is the view at now of limit l's window, stored at slot (-1:
// absent, which counts nothing).
func (s *State) windowAt(l Limit, slot int, now int64) windowView {
	if slot < 0 {
		return windowView{B: FloorDiv(now, l.Interval)}
	}
	return s.Windows[slot].view(now)
}

// wait is how long until n more fit in l's window, if nobody else spends:
// until enough of the oldest sub-windows have left the span. Sub-window
// B − i leaves it when sub-window B − i + Slots begins.
func (v *windowView) wait(l Limit, n, now int64) int64 {
	need := v.Count + n - l.Rate
	if need <= 0 {
		return 0
	}
	for i := l.Slots - 1; i >= 0; i-- {
		if need -= v.Counts[i]; need <= 0 {
			return (v.B-i+l.Slots)*l.Interval - now
		}
	}
	// Not reached: a request never costs more than the rate.
	return (v.B+l.Slots)*l.Interval - now
}

// until is when the last of the counts leaves the span, after which the
// window admits like an empty one; 0 when nothing counts.
func (v *windowView) until(l Limit) int64 {
	for i := int64(0); i < l.Slots; i++ {
		if v.Counts[i] > 0 {
			return (v.B - i + l.Slots) * l.Interval
		}
	}
	return 0
}

// resetAfter is how long until the window is empty again.
func (v *windowView) resetAfter(l Limit, now int64) int64 {
	return max(v.until(l)-now, 0)
}

// findWindow returns the index of l's window, or -1.
func (s *State) findWindow(l Limit) int {
	for i := range s.Windows {
		if s.Windows[i].Limit.same(l) {
			return i
		}
	}
	return -1
}

// SetWindow stores the state of l's window.
func (s *State) SetWindow(w Window) {
	if i := s.findWindow(w.Limit); i >= 0 {
		s.Windows[i] = w
		return
	}
	s.Windows = append(s.Windows, w)
}

// Window returns the stored state of l's window and whether there is one.
func (s *State) Window(l Limit) (Window, bool) {
	if i := s.findWindow(l); i >= 0 {
		return s.Windows[i], true
	}
	return Window{Limit: l}, false
}

// EncodeWindow writes a window's state as its Redis hash field holds it:
// "<newest> <count of newest> <count before> …", decimal, up to the last
// count that is not 0 (at least one). acquire.lua writes the same bytes.
func EncodeWindow(w *Window) string {
	last := int64(0)
	for i := int64(1); i < w.Limit.Slots; i++ {
		if w.Counts[i] != 0 {
			last = i
		}
	}
	b := make([]byte, 0, 24+8*last)
	b = strconv.AppendInt(b, w.Newest, 10)
	for i := int64(0); i <= last; i++ {
		b = append(b, ' ')
		b = strconv.AppendInt(b, w.Counts[i], 10)
	}
	return string(b)
}

// DecodeWindow reads l's window field as acquire.lua reads it: words
// separated by spaces, the first Slots + 1 of them each at most 16 decimal
// digits (the rest ignored); missing counts are 0. A value that does not
// parse is reported false and counts nothing, as in the script. The counts
// are not yet clamped (ClampRanges).
func DecodeWindow(l Limit, s string) (Window, bool) {
	w := Window{Limit: l}
	words := int64(0)
	for s != "" && words <= l.Slots {
		if s[0] == ' ' {
			s = s[1:]
			continue
		}
		end := 0
		for end < len(s) && s[end] != ' ' {
			end++
		}
		word := s[:end]
		s = s[end:]
		if len(word) > 16 {
			return Window{Limit: l}, false
		}
		v := int64(0)
		for i := 0; i < len(word); i++ {
			if word[i] < '0' || word[i] > '9' {
				return Window{Limit: l}, false
			}
			v = v*10 + int64(word[i]-'0')
		}
		if words == 0 {
			w.Newest = v
		} else {
			w.Counts[words-1] = v
		}
		words++
	}
	return w, words > 0
}

// clampRanges bounds a window read back from storage: counts within
// [0, Rate], so that sums stay exact below 2^53, and the newest sub-window
// before 2^53 µs, so that its times do too. It is bounded relative to now
// where it is used (view), which makes the second bound invisible to the
// decisions: the scripts need not apply it.
func (w *Window) clampRanges() {
	w.Newest = clamp(w.Newest, 0, (1<<53)/w.Limit.Interval)
	for i := range w.Counts {
		if int64(i) >= w.Limit.Slots {
			w.Counts[i] = 0
			continue
		}
		w.Counts[i] = clamp(w.Counts[i], 0, w.Limit.Rate)
	}
}
