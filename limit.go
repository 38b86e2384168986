package smartratelimit

import (
	"fmt"
	"math/bits"
	"strconv"
	"time"
)

// Limit is a rate limit of Rate events per Period, of one of two kinds.
//
// A Pacing limit (the zero Kind) is paced by GCRA (the generic cell rate
// algorithm): one event is due every emission interval T = Period/Rate,
// rounded up to a whole microsecond so that a limit never admits more than
// it says. Burst is how many events may be admitted back to back when the
// limit has been idle. The zero value means the default, 1: smooth pacing,
// one event every T, which never admits more than Rate events in any window
// of length Period — what servers with fixed or sliding windows expect. A
// larger Burst admits at most Rate + Burst − 1 events in any such window
// (the burst first, then Rate − 1 more as the bucket refills), so
// PerMinute(60) with Burst 10 can let 69 requests through in one minute.
// Pick Burst 1 when the server counts in windows and a larger Burst only
// when it is lenient. A pacing limit may be reserved (Request.MaxWait).
//
// A Windowed limit (see Window) admits at most Rate events in any window of
// length Period, at once or spread out as they come: bursts are allowed, so
// several windows (10 a second, 60 a minute, 1000 an hour) each bind only
// when their own budget is spent, instead of the slowest one pacing every
// request. Burst is ignored (it must be 0 or 1) and a request may cost up
// to Rate. A window limit is never reserved: a refusal says how long until
// enough of its past events have expired.
//
// A Limit is a plain value: compare it with ==, copy it freely.
type Limit struct {
	// Rate is the number of events per Period; it must be positive.
	Rate int
	// Period is the length of the window Rate is measured over; at least
	// one microsecond.
	Period time.Duration
	// Burst is the number of events a pacing limit admits at once; 0 means
	// 1. A window limit ignores it.
	Burst int
	// Kind is how the limit spends its Rate: Pacing (the zero value) or
	// Windowed.
	Kind LimitKind
}

// LimitKind says how a Limit spends its Rate over its Period.
type LimitKind int

const (
	// Pacing spaces events one emission interval apart (GCRA), with Burst
	// events admitted at once after an idle spell. The zero value.
	Pacing LimitKind = iota
	// Windowed admits at most Rate events in any window of length Period,
	// bursts allowed. The limiter counts them in ten sub-windows of
	// Period/10 (rounded up to a microsecond) and counts a sub-window whole
	// until all of it has left the window: it never admits more than Rate
	// in any window of length Period, and an event stops counting at most
	// one sub-window after the Period has passed, which is all the capacity
	// it loses.
	Windowed
)

// String returns "pacing" or "window".
func (k LimitKind) String() string {
	switch k {
	case Pacing:
		return "pacing"
	case Windowed:
		return "window"
	}
	return "LimitKind(" + strconv.Itoa(int(k)) + ")"
}

// PerSecond returns a pacing limit of n events per second with Burst 1.
func PerSecond(n int) Limit { return Limit{Rate: n, Period: time.Second, Burst: 1} }

// PerMinute returns a pacing limit of n events per minute with Burst 1.
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute, Burst: 1} }

// PerHour returns a pacing limit of n events per hour with Burst 1.
func PerHour(n int) Limit { return Limit{Rate: n, Period: time.Hour, Burst: 1} }

// Every returns a pacing limit of n events per period d with Burst 1.
func Every(n int, d time.Duration) Limit { return Limit{Rate: n, Period: d, Burst: 1} }

// Window returns a window limit: at most n events in any window of length
// period, admitted as they come, a burst of all n at once included. It is
// what a user means by "10 a second, 60 a minute, 1000 an hour":
//
//	WithDefaultLimits(Window(10, time.Second), Window(60, time.Minute), Window(1000, time.Hour))
//
// lets a batch of 50 through in five bursts of ten, about a second apart,
// where the same three pacing limits space every request 3.6s apart (the
// hourly one decides). The bound holds over every window, not only windows
// aligned to a clock: see Windowed for how it is counted and what it costs.
func Window(n int, period time.Duration) Limit { return Limit{Rate: n, Period: period, Kind: Windowed} }

// WithBurst returns a copy of l with the given Burst. See Limit for the
// bound a larger burst implies.
func (l Limit) WithBurst(burst int) Limit {
	l.Burst = burst
	return l
}

// String formats the limit as "60/1m0s", "60/1m0s burst 10" or, for a
// window limit, "60 per 1m0s window".
func (l Limit) String() string {
	switch {
	case l.Kind == Windowed:
		return fmt.Sprintf("%d per %v window", l.Rate, l.Period)
	case l.Kind != Pacing:
		return fmt.Sprintf("%d/%v %v", l.Rate, l.Period, l.Kind)
	case l.Burst > 1:
		return fmt.Sprintf("%d/%v burst %d", l.Rate, l.Period, l.Burst)
	}
	return fmt.Sprintf("%d/%v", l.Rate, l.Period)
}

// MaxSpan bounds every time span the limiter computes, in any unit: a
// Period, an emission interval multiplied by a burst or a cost. Ten years
// keeps every microsecond timestamp far inside the 2^53 range in which
// Redis's Lua numbers are exact integers.
const MaxSpan = 10 * 365 * 24 * time.Hour

// EffectiveBurst returns the most one request may cost: for a pacing limit
// Burst, or 1 when Burst is 0; for a window limit Rate, its whole window.
func (l Limit) EffectiveBurst() int {
	if l.Kind == Windowed {
		return l.Rate
	}
	if l.Burst == 0 {
		return 1
	}
	return l.Burst
}

// PeriodMicros returns the period in whole microseconds, rounded up.
func (l Limit) PeriodMicros() int64 { return ceilMicros(l.Period) }

// IntervalMicros returns the emission interval T = Period/Rate in whole
// microseconds, rounded up. It is only meaningful for a valid limit, and
// only a pacing limit paces by it.
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
	case l.Kind != Pacing && l.Kind != Windowed:
		return fmt.Errorf("%w: unknown kind %v", ErrInvalidLimit, l.Kind)
	case int64(l.Rate) > l.PeriodMicros():
		// For a window this keeps every count exact in the scripts' numbers
		// (below MaxSpan in µs, far below 2^53).
		return fmt.Errorf("%w: %v is finer than one event per microsecond", ErrInvalidLimit, l)
	case l.Kind == Windowed && l.Burst > 1:
		return fmt.Errorf("%w: burst %d of %v: a window limit admits its whole Rate at once and takes no Burst (0 or 1)",
			ErrInvalidLimit, l.Burst, l)
	case l.Kind == Windowed:
		// A window spans its Period, already bounded; it has no interval.
		return nil
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
