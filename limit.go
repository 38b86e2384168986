package smartratelimit

import (
	"fmt"
	"math/bits"
	"time"
)

// Limit is a rate limit of Rate events per Period, paced by GCRA (the
// generic cell rate algorithm): one event is due every emission interval
// T = Period/Rate, rounded up to a whole microsecond so that a limit never
// admits more than it says.
//
// Burst is how many events may be admitted back to back when the limit has
// been idle. The zero value means the default, 1: smooth pacing, one event
// every T, which never admits more than Rate events in any window of length
// Period — what servers with fixed or sliding windows expect. A larger Burst
// admits at most Rate + Burst − 1 events in any such window (the burst
// first, then Rate − 1 more as the bucket refills), so PerMinute(60) with
// Burst 10 can let 69 requests through in one minute. Pick Burst 1 when the
// server counts in windows and a larger Burst only when it is lenient.
//
// A Limit is a plain value: compare it with ==, copy it freely.
type Limit struct {
	// Rate is the number of events per Period; it must be positive.
	Rate int
	// Period is the length of the window Rate is measured over; at least
	// one microsecond.
	Period time.Duration
	// Burst is the number of events that may be admitted at once; 0 means 1.
	Burst int
}

// PerSecond returns a limit of n events per second with Burst 1.
func PerSecond(n int) Limit { return Limit{Rate: n, Period: time.Second, Burst: 1} }

// PerMinute returns a limit of n events per minute with Burst 1.
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute, Burst: 1} }

// PerHour returns a limit of n events per hour with Burst 1.
func PerHour(n int) Limit { return Limit{Rate: n, Period: time.Hour, Burst: 1} }

// Every returns a limit of n events per period d with Burst 1.
func Every(n int, d time.Duration) Limit { return Limit{Rate: n, Period: d, Burst: 1} }

// WithBurst returns a copy of l with the given Burst. See Limit for the
// bound a larger burst implies.
func (l Limit) WithBurst(burst int) Limit {
	l.Burst = burst
	return l
}

// String formats the limit as "60/1m0s" or "60/1m0s burst 10".
func (l Limit) String() string {
	if l.Burst > 1 {
		return fmt.Sprintf("%d/%v burst %d", l.Rate, l.Period, l.Burst)
	}
	return fmt.Sprintf("%d/%v", l.Rate, l.Period)
}

// MaxSpan bounds every time span the limiter computes, in any unit: a
// Period, an emission interval multiplied by a burst or a cost. Ten years
// keeps every microsecond timestamp far inside the 2^53 range in which
// Redis's Lua numbers are exact integers.
const MaxSpan = 10 * 365 * 24 * time.Hour

// EffectiveBurst returns Burst, or 1 when Burst is 0.
func (l Limit) EffectiveBurst() int {
	if l.Burst == 0 {
		return 1
	}
	return l.Burst
}

// PeriodMicros returns the period in whole microseconds, rounded up.
func (l Limit) PeriodMicros() int64 { return ceilMicros(l.Period) }

// IntervalMicros returns the emission interval T = Period/Rate in whole
// microseconds, rounded up. It is only meaningful for a valid limit.
func (l Limit) IntervalMicros() int64 {
	if l.Rate <= 0 {
		return 0
	}
	p := l.PeriodMicros()
	r := int64(l.Rate)
	return (p + r - 1) / r
}

// Validate reports why l cannot be used, wrapping ErrInvalidLimit, or nil.
func (l Limit) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("%w: rate %d must be positive", ErrInvalidLimit, l.Rate)
	case l.Period < time.Microsecond:
		return fmt.Errorf("%w: period %v must be at least 1µs", ErrInvalidLimit, l.Period)
	case l.Period > MaxSpan:
		return fmt.Errorf("%w: period %v exceeds %v", ErrInvalidLimit, l.Period, MaxSpan)
	case l.Burst < 0:
		return fmt.Errorf("%w: burst %d must not be negative", ErrInvalidLimit, l.Burst)
	case int64(l.Rate) > l.PeriodMicros():
		return fmt.Errorf("%w: %v is finer than one event per microsecond", ErrInvalidLimit, l)
	}
	// burst × interval within the span, checked without a second division.
	hi, lo := bits.Mul64(uint64(l.EffectiveBurst()), uint64(l.IntervalMicros()))
	if hi != 0 || lo > uint64(maxSpanMicros) {
		return fmt.Errorf("%w: burst %d of %v spans more than %v", ErrInvalidLimit, l.Burst, l, MaxSpan)
	}
	return nil
}

const maxSpanMicros = int64(MaxSpan / time.Microsecond)

// ceilMicros converts d to whole microseconds, rounding up so that a wait
// or a window is never shortened by the conversion.
func ceilMicros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if d%time.Microsecond > 0 {
		us++
	}
	return us
}
