package keystate

import "time"

// roll moves q into the window that contains now, when its window ended:
// the next window starts from what was left (the larger of Seen and the
// ramp at the reset) and ramps to the limit less one unit over its length;
// after a whole window passed untouched it starts at the target. The unit held back
// keeps a sliding-window server, whose windows we only know to a second,
// from counting one more than its limit when our steps and its windows do
// not line up. A quota whose limit the server never said cannot ramp and is
// forgotten (roll reports false).
func (q *Quota) roll(now int64) bool {
	end := q.rollAt()
	if now < end {
		return true
	}
	if q.Limit <= 0 {
		return false
	}
	left := q.Base + q.Gain - q.Spent // the ramp at the reset
	if q.Seen > left {
		left = q.Seen
	}
	left = clamp(left, 0, q.Limit)
	if q.Refills == refillsContinuously {
		// What a refilling server's window left unspent we may have placed
		// on the wrong side of its boundary: the next window starts empty.
		left = 0
	}
	target := q.target()
	windows := FloorDiv(now-end, q.Window) + 1
	if windows > 1 {
		// A whole window passed untouched: the ramp reached its target.
		// (So rolling twice gives what rolling once to the later time does.)
		left = max(left, target)
	}
	if q.Refills == refillsAtOnce {
		// The server refilled at once before: the probe need not wait
		// for the ramp's first step.
		left = max(left, min(1, q.Limit))
	}
	q.ResetAt += windows * q.Window
	q.Base, q.Gain, q.Spent, q.Seen = left, max(target-left, 0), 0, -1
	return true
}

// target is where a window's ramp ends: one below the limit (see roll),
// and for a server that refills as time passes a margin below it (see
// margin).
func (q *Quota) target() int64 {
	switch {
	case q.Limit <= 1:
		return q.Limit
	case q.Refills == refillsContinuously:
		// The margin's share of the limit, rounded up, at least one.
		m := FloorDiv(q.Limit*(q.margin()*rampSteps/q.Window)+rampSteps-1, rampSteps)
		return max(q.Limit-max(1, m), 1)
	}
	return q.Limit - 1
}

// margin is, for a server that refills as time passes, how far our guess
// of its window's boundaries may be off: half the reset's slack (we place
// the boundary in the middle of what the headers allow), and at least a
// sixteenth of the window. What we spend on the wrong side of a boundary
// lands where a sliding window has room only for what its last window left
// unspent, so the ramp starts this far into the window and ends this share
// of the limit below it.
func (q *Quota) margin() int64 {
	return min(max(q.Window/16, q.Slack/2), q.Window/2)
}

// rollAt is when the window ends: at ResetAt, never early, for a server
// that refills at once (a fixed window whose second we only know to a
// second), but in the middle of what the headers allow for one that
// refills as time passes (see margin).
func (q *Quota) rollAt() int64 {
	if q.Refills == refillsContinuously {
		return q.ResetAt - q.Slack/2
	}
	return q.ResetAt
}

// resetAfter is how long until the window ends, bounded by MaxHorizon.
func (q *Quota) resetAfter(now int64) int64 { return max(min(q.rollAt(), now+maxHorizon)-now, 0) }

// start is when the current window's ramp begins: when the window began,
// and for a server that refills as time passes a margin later.
func (q *Quota) start() int64 {
	if q.Refills == refillsContinuously {
		return q.rollAt() - q.Window + q.margin()
	}
	return q.ResetAt - q.Window
}

// ramp is what the ramp allows at now: Base plus Gain, less what was
// spent; it may be negative. The gain comes in rampSteps equal steps over
// the window at the rate of Gain+1 per window, so that its last unit
// comes a unit's time before the window ends, not at its end, where the
// window rolls first and the unit would be lost to every window.
func (q *Quota) ramp(now int64) int64 {
	if q.Gain == 0 {
		return q.Base - q.Spent
	}
	e := clamp(now-q.start(), 0, q.Window)
	steps := FloorDiv(e*rampSteps, q.Window)
	return q.Base + min(FloorDiv((q.Gain+1)*steps, rampSteps), q.Gain) - q.Spent
}

// rampAbove is the ramp at now with its gain's fraction rounded up: the
// least whole count the ramp will have reached once the fraction fills.
// A ramp anchored on a count with it (see reanchor) adds a unit only after
// a whole unit's worth of time has passed since, as a server that refills
// as time passes frees them; anchored on the rounded-down ramp it would add
// one as soon as its fraction happened to fill, which may be at once.
func (q *Quota) rampAbove(now int64) int64 {
	if q.Gain == 0 {
		return q.Base - q.Spent
	}
	e := clamp(now-q.start(), 0, q.Window)
	steps := FloorDiv(e*rampSteps, q.Window)
	return q.Base + min(FloorDiv((q.Gain+1)*steps+rampSteps-1, rampSteps), q.Gain) - q.Spent
}

// available is what may be spent at now: the larger of what a response of
// this window said (less spends) and the ramp.
func (q *Quota) available(now int64) int64 {
	return max(q.Seen, q.ramp(now))
}

// wait is how long until need units are available, assuming nobody else
// spends: until the ramp gets there, or until the window ends.
func (q *Quota) wait(now, need int64) int64 {
	if q.available(now) >= need {
		return 0
	}
	resetAt := now + q.resetAfter(now)
	short := need - q.Base + q.Spent // what the ramp's gain must reach
	if q.Gain > 0 && short <= q.Gain {
		steps := FloorDiv(short*rampSteps+q.Gain, q.Gain+1)
		e := FloorDiv(steps*q.Window+rampSteps-1, rampSteps)
		if at := q.start() + e; at < resetAt && at > now {
			return at - now
		}
	}
	return resetAt - now
}

// spend takes need units at now, from both the ramp and what was seen, and
// counts them in flight until their response is observed.
func (q *Quota) spend(now, need int64) {
	if need <= 0 {
		return
	}
	q.Spent += need
	if q.Seen >= 0 {
		q.Seen = max(q.Seen-need, 0)
	}
	q.InFlight, q.InFlightAt = q.inFlight(now)+need, now
}

// assumed reports a window entered by a reset, of which no response was
// seen yet.
func (q *Quota) assumed() bool { return q.Seen < 0 }

// InFlightAge is how long what is in flight counts after its last change.
const InFlightAge = time.Minute

const inFlightAge = int64(InFlightAge / time.Microsecond)

// inFlight is what is in flight at now.
func (q *Quota) inFlight(now int64) int64 {
	if now-q.InFlightAt > inFlightAge {
		return 0
	}
	return q.InFlight
}

// settle takes n units off what is in flight: the response of the request
// they were spent for was observed (or the request failed).
func (q *Quota) settle(now, n int64) {
	q.InFlight = max(q.inFlight(now)-n, 0)
}

// refund gives back n units spent for a request that never reached the
// server: to the ramp and to what was seen, and off what is in flight.
func (q *Quota) refund(now, n int64) {
	q.settle(now, n)
	q.Spent = max(q.Spent-n, 0)
	if q.Seen >= 0 {
		q.Seen += n
		if q.Limit > 0 {
			q.Seen = min(q.Seen, q.Limit)
		}
	}
}
