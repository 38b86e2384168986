package redislimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
	"github.com/smartratelimit/smartratelimit/internal/scripts"
	"github.com/smartratelimit/smartratelimit/internal/wait"
)

// Limiter decides admission against budgets kept in Redis, shared by every
// process that uses the same Redis and key prefix. Each decision is one
// atomic script call; see the package documentation for the model.
//
// A Limiter is safe for concurrent use by multiple goroutines.
type Limiter struct {
	cfg         config
	rdb         redis.UniversalClient
	run         *scripts.Runner
	ctxTimeouts bool
	closed      atomic.Bool
}

var _ srl.Backend = (*Limiter)(nil)

// New returns a limiter on rdb (a *redis.Client, *redis.ClusterClient,
// failover client or Ring). It does not contact Redis: a Redis that is down
// at start does not fail construction. An invalid option or a nil client
// makes every method return the error. Close does not close rdb.
func New(rdb redis.UniversalClient, opts ...Option) *Limiter {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if rdb == nil {
		cfg.fail("nil redis client")
	}
	l := &Limiter{cfg: cfg, rdb: rdb}
	if rdb != nil {
		var now func() time.Time
		if cfg.clientTime {
			now = cfg.now
		}
		l.run = scripts.NewRunner(rdb, now)
		l.ctxTimeouts = honoursContext(rdb)
	}
	return l
}

// honoursContext reports whether the client applies context deadlines to
// its sockets; otherwise the limiter races each call against its budget.
func honoursContext(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

func (l *Limiter) usable() error {
	if l.closed.Load() {
		return ErrClosedLimiter
	}
	return l.cfg.err
}

// ErrClosedLimiter is returned by every call after Close; it wraps
// smartratelimit.ErrClosed.
var ErrClosedLimiter = fmt.Errorf("redislimit: %w", srl.ErrClosed)

// Allow is shorthand for AllowN(ctx, key, 1, limits...).
func (l *Limiter) Allow(ctx context.Context, key string, limits ...srl.Limit) (srl.Decision, error) {
	return l.AllowN(ctx, key, 1, limits...)
}

// AllowN decides whether n units may be spent from key's budget now, under
// the given limits and whatever quota or block the servers reported for
// key. It never waits: a refusal carries RetryAfter.
func (l *Limiter) AllowN(ctx context.Context, key string, n int, limits ...srl.Limit) (srl.Decision, error) {
	return l.Acquire(ctx, srl.Request{Key: key, N: n, Limits: limits})
}

// Wait blocks until one unit of key's budget is admitted, or fails at once
// with a *smartratelimit.LimitError when that cannot happen before ctx's
// deadline. Configured limits are reserved (the call sleeps exactly the
// granted delay, so concurrent callers get spaced slots instead of
// retrying in a herd); a server quota or Retry-After block is slept with
// jitter. When ctx ends during a reserved delay the slot stays spent.
func (l *Limiter) Wait(ctx context.Context, key string, limits ...srl.Limit) error {
	_, err := l.WaitRequest(ctx, srl.Request{Key: key, N: 1, Limits: limits})
	return err
}

// WaitN is Wait for n units.
func (l *Limiter) WaitN(ctx context.Context, key string, n int, limits ...srl.Limit) error {
	_, err := l.WaitRequest(ctx, srl.Request{Key: key, N: n, Limits: limits})
	return err
}

// WaitRequest is Wait for a full request; r.MaxWait, when positive, bounds
// the total wait like a deadline. It returns the admitting decision.
func (l *Limiter) WaitRequest(ctx context.Context, r srl.Request) (srl.Decision, error) {
	if err := r.Validate(); err != nil {
		return srl.Decision{}, err
	}
	return wait.For(ctx, l, r, wait.Sleep, time.Now)
}

// Acquire decides one request; it implements smartratelimit.Backend.
func (l *Limiter) Acquire(ctx context.Context, r srl.Request) (srl.Decision, error) {
	if err := l.usable(); err != nil {
		return srl.Decision{}, err
	}
	if err := r.Validate(); err != nil {
		return srl.Decision{}, err
	}
	all, nFixed := keystate.CompileRequest(nil, r.Limits, r.DefaultLimits)
	rk := RedisKey(l.cfg.prefix, r.Key)
	n, maxWait := int64(r.N), int64(r.MaxWait/time.Microsecond)
	res, err := within(ctx, l, func(ctx context.Context) (keystate.Result, error) {
		return l.run.Acquire(ctx, rk, n, maxWait, all, nFixed)
	})
	if err != nil {
		return srl.Decision{}, wrapFailure(classify(err), r.Key, rk, err)
	}
	return res.Decision(), nil
}

// Observe merges what a response said about the server's budget for key
// into the shared state, so every process learns it; see
// smartratelimit.Observation for the rules and the bounds that reject
// garbage. An observation with nothing to store costs no round trip.
func (l *Limiter) Observe(ctx context.Context, key string, o srl.Observation) error {
	if err := l.usable(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	o, err := o.Normalize()
	if err != nil || o.IsZero() {
		return err
	}
	rk := RedisKey(l.cfg.prefix, key)
	obs, params := keystate.ObsFrom(o), keystate.Params(o, l.cfg.backoffBase, l.cfg.backoffMax)
	_, err = within(ctx, l, func(ctx context.Context) (keystate.ObserveResult, error) {
		return l.run.Observe(ctx, rk, obs, params)
	})
	if err != nil {
		return wrapFailure(classify(err), key, rk, err)
	}
	return nil
}

// Status returns key's budget as every process sees it, without changing
// it: the server quota, any block, and each given limit.
func (l *Limiter) Status(ctx context.Context, key string, limits ...srl.Limit) (srl.Status, error) {
	return l.Peek(ctx, srl.Request{Key: key, Limits: limits})
}

// Peek is Status for a full request (with default limits); it implements
// smartratelimit.Backend.
func (l *Limiter) Peek(ctx context.Context, r srl.Request) (srl.Status, error) {
	if err := l.usable(); err != nil {
		return srl.Status{}, err
	}
	if err := r.ValidateStatus(); err != nil {
		return srl.Status{}, err
	}
	all, nFixed := keystate.CompileRequest(nil, r.Limits, r.DefaultLimits)
	rk := RedisKey(l.cfg.prefix, r.Key)
	type peeked struct {
		now int64
		st  keystate.State
	}
	p, err := within(ctx, l, func(ctx context.Context) (peeked, error) {
		now, st, err := l.run.Status(ctx, rk, all)
		return peeked{now, st}, err
	})
	if err != nil {
		return srl.Status{}, wrapFailure(classify(err), r.Key, rk, err)
	}
	return p.st.Status(p.now, r.Key, all, nFixed), nil
}

// Reset deletes everything stored for key: its limits' pacing, the learned
// quota and any block.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.usable(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	rk := RedisKey(l.cfg.prefix, key)
	_, err := within(ctx, l, func(ctx context.Context) (int64, error) {
		return l.rdb.Del(ctx, rk).Result()
	})
	if err != nil {
		return wrapFailure(classify(err), key, rk, err)
	}
	return nil
}

// Close stops the limiter: later calls return ErrClosedLimiter. It does
// not close the Redis client, which the caller owns.
func (l *Limiter) Close() error {
	l.closed.Store(true)
	return nil
}

// within runs f under the decision budget. When the client ignores context
// deadlines on its sockets, f runs in its own goroutine and is abandoned
// at the deadline; the abandoned call ends at the client's own read
// timeout. A failure is reported as the caller's context error when the
// caller's context ended, and as the exceeded budget when the budget ran
// out, whatever error the client surfaced first (its socket deadline can
// fire a moment before the context's timer).
func within[T any](parent context.Context, l *Limiter, f func(context.Context) (T, error)) (T, error) {
	budgetEnds := time.Now().Add(l.cfg.decisionTimeout)
	ctx, cancel := context.WithDeadlineCause(parent, budgetEnds, errDecisionTimeout)
	defer cancel()
	v, err := race(ctx, l.ctxTimeouts, f)
	if err == nil {
		return v, nil
	}
	if perr := parent.Err(); perr != nil {
		return v, callerDone{perr}
	}
	now := time.Now()
	if dl, ok := parent.Deadline(); ok && !now.Before(dl) {
		return v, callerDone{context.DeadlineExceeded}
	}
	if !now.Before(budgetEnds) && !errors.Is(err, errDecisionTimeout) {
		err = fmt.Errorf("%w: %w", errDecisionTimeout, err)
	}
	return v, err
}

// race runs f on ctx, directly when the client honours ctx on its sockets,
// else in a goroutine raced against ctx.
func race[T any](ctx context.Context, direct bool, f func(context.Context) (T, error)) (T, error) {
	if direct {
		return f(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}
