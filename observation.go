package smartratelimit

import (
	"fmt"
	"time"
)

// Observation is what one HTTP response said about the server's budget,
// with every time converted to a duration measured from the response's own
// Date header, so that no pod's clock ever enters the shared state.
//
// The quota part (Limit, Remaining, Window) only counts when Reset is
// positive: a remaining count without a reset time cannot be placed in a
// window. Remaining is then taken literally, so 0 means "spent".
type Observation struct {
	// Limit is the size of the server's window budget; 0 when unknown.
	Limit int
	// Remaining is what is left of it in the current window.
	Remaining int
	// Reset is how long until the window resets; 0 when unknown.
	Reset time.Duration
	// RetryAfter is how long the server asked every caller to stay away.
	RetryAfter time.Duration
	// Window is the length of the server's window, when it says (the IETF
	// "w=" parameter); 0 when unknown.
	Window time.Duration
	// Limited reports that the response refused the call for rate (an HTTP
	// 429, or a GitHub 403 secondary limit). Without a RetryAfter the key is
	// blocked for a backoff that doubles with each consecutive refusal.
	Limited bool
}

// Bounds applied to every observation before it reaches shared state, so a
// garbage header can never block a fleet for days or overflow arithmetic.
const (
	// MaxHorizon is the furthest an observed Reset, RetryAfter or Window may
	// reach: one day, which covers daily quotas. Beyond it the observation
	// is rejected with ErrInvalidObservation.
	MaxHorizon = 24 * time.Hour
	// MaxCount is the largest Limit or Remaining accepted (2^40).
	MaxCount = 1 << 40
)

// Normalize returns the form of o that backends store, or an error wrapping
// ErrInvalidObservation. The rules, shared by every backend:
//
//   - a negative field, or a count above MaxCount, rejects the observation;
//   - a Reset, RetryAfter or Window beyond MaxHorizon rejects it;
//   - Remaining above a known Limit is clamped to Limit;
//   - without a Reset the quota part is dropped;
//   - durations are rounded up to whole microseconds.
//
// Call IsZero on the result to learn whether anything is left to store.
func (o Observation) Normalize() (Observation, error) {
	if o.Limit < 0 || o.Remaining < 0 || o.Reset < 0 || o.RetryAfter < 0 || o.Window < 0 {
		return Observation{}, fmt.Errorf("%w: negative value in %+v", ErrInvalidObservation, o)
	}
	if o.Limit > MaxCount || o.Remaining > MaxCount {
		return Observation{}, fmt.Errorf("%w: count above %d in %+v", ErrInvalidObservation, MaxCount, o)
	}
	if o.Reset > MaxHorizon || o.RetryAfter > MaxHorizon || o.Window > MaxHorizon {
		return Observation{}, fmt.Errorf("%w: time beyond %v in %+v", ErrInvalidObservation, MaxHorizon, o)
	}
	if o.Reset == 0 {
		o.Limit, o.Remaining, o.Window = 0, 0, 0
	}
	if o.Limit > 0 && o.Remaining > o.Limit {
		o.Remaining = o.Limit
	}
	o.Reset = roundUpMicro(o.Reset)
	o.RetryAfter = roundUpMicro(o.RetryAfter)
	o.Window = roundUpMicro(o.Window)
	return o, nil
}

// IsZero reports that o carries nothing a backend would store.
func (o Observation) IsZero() bool {
	return o.Reset == 0 && o.RetryAfter == 0 && !o.Limited
}

func roundUpMicro(d time.Duration) time.Duration {
	return time.Duration(ceilMicros(d)) * time.Microsecond
}
