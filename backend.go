package smartratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxLimits bounds the limits of one request, fixed and default together.
const MaxLimits = 16

// Request is one admission request to a Backend.
type Request struct {
	// Key names the shared budget, e.g. "api.github.com".
	Key string
	// N is the cost in units; at least 1 and at most the Burst of every
	// pacing limit given and the Rate of every window limit.
	N int
	// Limits are always enforced (a cap you impose on yourself). At most
	// MaxLimits limits, fixed and default together.
	Limits []Limit
	// DefaultLimits are enforced only while the server has not advertised
	// its quota for the key (the source documents' default_limits).
	DefaultLimits []Limit
	// MaxWait is the longest reservation the caller accepts: when only the
	// configured pacing limits stand in the way and their wait is at most
	// MaxWait, the request is admitted with Decision.Delay set. 0 means
	// admit only at once. A window limit, a quota or a Retry-After block is
	// never reserved, and no reservation reaches further than
	// MaxReservation. Wait functions read it as the longest total wait
	// instead (0: until the context ends).
	MaxWait time.Duration
	// Costs are the request's costs in units other than requests (tokens,
	// for an LLM API), spent from the server's quota of that unit when the
	// key has one; N is the cost in requests and in every configured limit.
	// At most MaxQuotas, one per unit.
	Costs []Cost
	// Probe, when positive, asks to learn before spending: while the key's
	// server quota is unknown (and no default limit applies) or only assumed
	// after a reset, one request takes a probe lease of this length and goes
	// first (its Decision has Report set); the others are refused with
	// CauseProbe until its response is observed or the lease ends. A key
	// whose probe got a response without rate-limit headers is not probed
	// again for BareFor. 0 disables probing.
	Probe time.Duration
}

// Cost is a request's cost in one unit.
type Cost struct {
	Unit string
	N    int
}

// Charge is what an admission spent from one of the key's server quotas
// (Decision.Charged), to be handed back with the request's response
// (Observation.Charged). Mark is the quota's count of settled spends when
// the request was admitted: with it, the backend knows which spends the
// response's remaining count may not include (those settled meanwhile),
// so that any response, not only one from a later second, may safely
// raise what is left. 0 means unknown (a Charge built by hand): only a
// response from a later second may then raise it.
type Charge struct {
	Unit string
	N    int
	Mark int64
}

// MaxReservation bounds every reservation: a request is never admitted with
// a Delay beyond it, and no stored pacing state may lie further ahead than
// a limit's own span plus it (so a clock step cannot block a key for long).
const MaxReservation = time.Minute

// BareFor is how long a key whose probe got a response without rate-limit
// headers is not probed again.
const BareFor = 10 * time.Minute

// Validate reports why r cannot be decided, wrapping ErrInvalidRequest or
// ErrInvalidLimit, or nil. Backends call it before any I/O.
func (r Request) Validate() error {
	if r.Key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidRequest)
	}
	if r.N < 1 {
		return fmt.Errorf("%w: cost n=%d must be at least 1", ErrInvalidRequest, r.N)
	}
	if r.MaxWait < 0 {
		return fmt.Errorf("%w: negative max wait %v", ErrInvalidRequest, r.MaxWait)
	}
	if r.MaxWait > MaxSpan {
		return fmt.Errorf("%w: max wait %v exceeds %v", ErrInvalidRequest, r.MaxWait, MaxSpan)
	}
	if r.Probe < 0 || r.Probe > MaxHorizon {
		return fmt.Errorf("%w: probe lease %v outside [0, %v]", ErrInvalidRequest, r.Probe, MaxHorizon)
	}
	if len(r.Costs) > MaxQuotas {
		return fmt.Errorf("%w: %d costs, at most %d", ErrInvalidRequest, len(r.Costs), MaxQuotas)
	}
	for i, c := range r.Costs {
		if err := ValidUnit(c.Unit); err != nil {
			return fmt.Errorf("%w: cost %d: %v", ErrInvalidRequest, i, err)
		}
		// The errors quote copies of the unit, for the reason ValidUnit gives.
		if c.N < 0 || c.N > MaxCount {
			return fmt.Errorf("%w: cost %d %s outside [0, %d]", ErrInvalidRequest, c.N, strings.Clone(c.Unit), MaxCount)
		}
		if c.Unit == UnitRequests {
			return fmt.Errorf("%w: the cost in requests is N, not a Cost", ErrInvalidRequest)
		}
		for _, d := range r.Costs[:i] {
			if d.Unit == c.Unit {
				return fmt.Errorf("%w: two costs in %s", ErrInvalidRequest, strings.Clone(c.Unit))
			}
		}
	}
	if n := len(r.Limits) + len(r.DefaultLimits); n > MaxLimits {
		return fmt.Errorf("%w: %d limits, at most %d", ErrInvalidRequest, n, MaxLimits)
	}
	for _, set := range [][]Limit{r.Limits, r.DefaultLimits} {
		for _, l := range set {
			if err := l.Validate(); err != nil {
				return err
			}
			if r.N > l.EffectiveBurst() && l.Kind == Windowed {
				return fmt.Errorf("%w: cost n=%d exceeds the rate %d of limit %v, so it could never be admitted",
					ErrInvalidRequest, r.N, l.Rate, l)
			}
			if r.N > l.EffectiveBurst() {
				return fmt.Errorf("%w: cost n=%d exceeds the burst %d of limit %v, so it could never be admitted; raise the limit's Burst",
					ErrInvalidRequest, r.N, l.EffectiveBurst(), l)
			}
		}
	}
	return nil
}

// ValidateStatus is Validate for a status query, which has no cost.
func (r Request) ValidateStatus() error {
	r.N = 1
	r.MaxWait = 0
	return r.Validate()
}

// Backend stores the budgets of many keys and decides admission atomically.
// The Redis limiter (package redislimit) and the in-memory store (package
// fallback) both implement it, with identical arithmetic; a conformance
// suite (package backendtest) holds them to it.
//
// Implementations are safe for concurrent use.
type Backend interface {
	// Acquire decides one request and, when it is allowed, spends its cost
	// from every dimension at once; a refusal spends nothing.
	Acquire(ctx context.Context, r Request) (Decision, error)
	// Observe merges what a response said about the server's budget. An
	// observation from an older window than the stored one is ignored, and
	// within one window the remaining count never rises.
	Observe(ctx context.Context, key string, o Observation) error
	// Peek returns the key's budget without changing it. r.N and
	// r.MaxWait are ignored.
	Peek(ctx context.Context, r Request) (Status, error)
	// Reset forgets everything stored for the key.
	Reset(ctx context.Context, key string) error
}

// ManyObserver is implemented by a Backend that merges several
// observations of one key in one round trip. ObserveMany(ctx, key, os) has
// the effect of calling Observe(ctx, key, o) for each o in os, in order,
// at one instant; an invalid observation is left out and named in the
// returned error, the others are stored. httpclient uses it to store the
// responses it deferred (see its "One round trip per request").
type ManyObserver interface {
	ObserveMany(ctx context.Context, key string, os []Observation) error
}

// ObserveMany stores observations of key through b, in order: in one call
// when b is a ManyObserver, else by one Observe each, where an invalid
// observation is left out and named in the returned error.
func ObserveMany(ctx context.Context, b Backend, key string, os []Observation) error {
	if many, ok := b.(ManyObserver); ok {
		return many.ObserveMany(ctx, key, os)
	}
	var errs []error
	for _, o := range os {
		if err := b.Observe(ctx, key, o); err != nil {
			if !errors.Is(err, ErrInvalidObservation) {
				return errors.Join(append([]error{err}, errs...)...)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
