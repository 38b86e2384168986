package smartratelimit

import (
	"context"
	"fmt"
	"time"
)

// MaxLimits bounds the limits of one request, fixed and default together.
const MaxLimits = 16

// Request is one admission request to a Backend.
type Request struct {
	// Key names the shared budget, e.g. "api.github.com".
	Key string
	// N is the cost in units; at least 1 and at most the Burst of every
	// limit given.
	N int
	// Limits are always enforced (a cap you impose on yourself). At most
	// MaxLimits limits, fixed and default together.
	Limits []Limit
	// DefaultLimits are enforced only while the server has not advertised
	// its quota for the key (the source documents' default_limits).
	DefaultLimits []Limit
	// MaxWait is the longest reservation the caller accepts: when only the
	// configured limits stand in the way and their wait is at most MaxWait,
	// the request is admitted with Decision.Delay set. 0 means admit only at
	// once. A quota or a Retry-After block is never reserved. Wait functions
	// read it as the longest total wait instead (0: until the context ends).
	MaxWait time.Duration
}

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
	if n := len(r.Limits) + len(r.DefaultLimits); n > MaxLimits {
		return fmt.Errorf("%w: %d limits, at most %d", ErrInvalidRequest, n, MaxLimits)
	}
	for _, set := range [][]Limit{r.Limits, r.DefaultLimits} {
		for _, l := range set {
			if err := l.Validate(); err != nil {
				return err
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
