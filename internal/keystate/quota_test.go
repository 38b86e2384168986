package keystate

import "testing"

// A ramp anchored on what a response says is left grows from there by
// whole units of time, never at once: a server that refills as time passes
// (a sliding window, a bucket) frees one unit per Window/Gain, and the
// ramp's fraction filling just after the anchor is no such unit. (Anchored
// on the rounded-down ramp, real httprate refused the fleet at a window's
// start and cost it the whole window.)
func TestReanchorGrowsByWholeUnits(t *testing.T) {
	const window = 10_000_000 // 10 s in µs
	for _, anchorAt := range []int64{1_000_000, 1_230_000, 2_290_000, 5_555_555} {
		q := Quota{Unit: "requests", Limit: 50, Window: window, Refills: refillsContinuously, Seen: 6, Low: 6}
		q.ResetAt = window - q.margin() // the ramp starts at 0
		q.Base, q.Gain = 0, 43
		q.reanchor(anchorAt, 6, true)
		if got := q.ramp(anchorAt); got > 6 {
			t.Fatalf("anchored at %dµs on 6: the ramp says %d", anchorAt, got)
		}
		unit := int64(window / (q.Gain + 1)) // µs per unit the ramp frees
		for now := anchorAt; now < anchorAt+unit; now += 1000 {
			if got := q.ramp(now); got > 6 {
				t.Fatalf("anchored at %dµs on 6: %dµs later the ramp says %d, before a unit's time (%dµs) passed", anchorAt, now-anchorAt, got, unit)
			}
		}
		if got := q.ramp(anchorAt + 2*unit + 1); got < 7 {
			t.Fatalf("anchored at %dµs on 6: two units' time later the ramp still says %d", anchorAt, got)
		}
	}
}
