package redislimit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
	"github.com/smartratelimit/smartratelimit/internal/scripts"
	"github.com/smartratelimit/smartratelimit/internal/wait"
)

// Limiter decides admission against budgets kept in Redis, shared by every
// process that uses the same Redis and key prefix. Each decision is one
// atomic script call; see the package documentation for the model. While
// Redis is unavailable the failure policy decides instead (WithFailurePolicy),
// and every such decision is marked Degraded.
//
// A Limiter is safe for concurrent use by multiple goroutines.
type Limiter struct {
	cfg         config
	rdb         redis.UniversalClient
	run         *scripts.Runner
	ctxTimeouts bool
	twin        *fallback.Store
	brk         *breakers
	denials     *denyCache
	batchers    sync.Map // node address ("" without a cluster) → *batcher
	closed      atomic.Bool
	// Calls raced against the budget that may still be running.
	inflight atomic.Int64
	calls    sync.WaitGroup
}

var _ srl.Backend = (*Limiter)(nil)

// maxInFlight bounds raced calls still running, abandoned ones included: a
// black-holed Redis then costs a bounded number of goroutines and
// connections, and further calls fail at once instead of piling up.
const maxInFlight = 1024

// closeWait bounds how long Close waits for calls still in flight.
const closeWait = 5 * time.Second

// New returns a limiter on rdb (a *redis.Client, *redis.ClusterClient,
// failover client or Ring). It does not contact Redis: a Redis that is down
// at start does not fail construction, the first decisions are simply
// degraded. An invalid option or a nil client makes every method return
// the error. Close does not close rdb.
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
	twin := cfg.twin
	if twin == nil {
		twin = fallback.New(fallback.WithThrottleBackoff(cfg.backoffBase, cfg.backoffMax))
	}
	onChange := cfg.onDegraded
	if obs := cfg.observer; obs != nil {
		onChange = func(degraded bool, cause error) {
			obs.Event(srl.Event{Kind: srl.EventDegradedChange, Degraded: degraded, Err: cause})
			if cfg.onDegraded != nil {
				cfg.onDegraded(degraded, cause)
			}
		}
	}
	l := &Limiter{
		cfg:     cfg,
		rdb:     rdb,
		twin:    twin,
		brk:     newBreakers(rdb, cfg.threshold, cfg.probeMin, cfg.probeMax, onChange),
		denials: newDenyCache(),
	}
	l.brk.onSweep = l.retireNodes
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

// batcherFor returns the batcher of a node, made on first use: batches
// never span nodes, so a slow or dead master holds up only its own keys.
func (l *Limiter) batcherFor(addr string) *batcher {
	if b, ok := l.batchers.Load(addr); ok {
		return b.(*batcher)
	}
	b := newBatcher(l.run, l.cfg.decisionTimeout, l.ctxTimeouts)
	if actual, loaded := l.batchers.LoadOrStore(addr, b); loaded {
		b.close(0, ErrClosedLimiter)
		return actual.(*batcher)
	}
	if l.closed.Load() {
		// Close ran between the caller's check and the store and may
		// have missed this batcher: stop it, so the call ends with
		// ErrClosedLimiter and no worker outlives the limiter.
		b.close(0, ErrClosedLimiter)
	}
	return b
}

// errNodeRetired ends a decision queued for a cluster node that is no longer
// a master; the decision is sent again to the key's new master.
var errNodeRetired = fmt.Errorf("%w: the node is no longer a master", ErrUnavailable)

// retireNodes stops the batchers of addresses that are no longer masters:
// after a failover or a resharding their workers would otherwise live until
// Close.
func (l *Limiter) retireNodes(masters map[string]bool) {
	l.batchers.Range(func(addr, b any) bool {
		if a := addr.(string); a != "" && !masters[a] {
			l.batchers.Delete(a)
			b.(*batcher).close(0, errNodeRetired)
		}
		return true
	})
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

// errBreakerOpen is the cause of decisions made without trying Redis.
var errBreakerOpen = fmt.Errorf("%w: breaker open after repeated failures", ErrUnavailable)

// Degraded reports whether the limiter has stopped using Redis (a breaker
// is open; with a Redis Cluster, for one master's slots or more) and
// decides by its failure policy there.
func (l *Limiter) Degraded() bool { return l.brk.degraded() }

// Probes returns how many probes of Redis the limiter made while degraded.
func (l *Limiter) Probes() int64 { return l.brk.probes() }

// call runs f against Redis when the breaker allows it and feeds the
// outcome back to the breaker. It returns ok=false when the caller must
// decide by the failure policy, with the cause; any other error is final.
// honours says that f itself keeps the decision budget and reports the
// caller's context ending as callerDone (the batcher does); otherwise f
// runs under within. f learns the address of the node serving the key (""
// without a cluster).
func call[T any](ctx context.Context, l *Limiter, key, redisKey string, honours bool, f func(ctx context.Context, node string) (T, error)) (v T, ok bool, err error) {
	brk, node := l.breakerFor(ctx, redisKey)
	t, useRedis := brk.allow()
	if !useRedis {
		return v, false, errBreakerOpen
	}
	if honours {
		v, err = f(ctx, node)
	} else {
		v, err = within(ctx, l, l.ctxTimeouts, func(ctx context.Context) (T, error) { return f(ctx, node) })
	}
	ok, err = l.settle(ctx, brk, t, key, redisKey, err)
	return v, ok, err
}

// settle feeds the outcome of a call made with ticket t back to brk, and
// says, as call does, whether the caller must decide by the failure
// policy (ok=false) and with which error.
func (l *Limiter) settle(ctx context.Context, brk *breaker, t ticket, key, redisKey string, err error) (ok bool, _ error) {
	if err == nil {
		brk.success(t)
		return true, nil
	}
	if errors.Is(err, ErrClosedLimiter) {
		brk.release(t)
		return true, err
	}
	kind := classify(err)
	if obs := l.cfg.observer; obs != nil && kind != kindCaller {
		obs.Event(srl.Event{Kind: srl.EventBackendError, Key: key, ErrorKind: kind.String(), Err: err})
	}
	switch kind {
	case kindInfra:
		wrapped := wrapFailure(kind, key, redisKey, err)
		brk.failure(t, wrapped)
		if l.brk.cluster != nil {
			// go-redis refreshes its slot table on MOVED or once a minute;
			// a dead master answers neither, so ask now (go-redis coalesces
			// and spaces the reloads): a promoted replica then gets its own
			// breaker.
			l.brk.cluster.ReloadState(ctx)
		}
		return false, wrapped
	case kindCaller:
		brk.release(t)
		return true, wrapFailure(kind, key, redisKey, err)
	default:
		brk.success(t)
		return true, wrapFailure(kind, key, redisKey, err)
	}
}

// breakerFor returns the breaker of the node serving redisKey and the
// node's address, looking it up within the decision budget.
func (l *Limiter) breakerFor(ctx context.Context, redisKey string) (*breaker, string) {
	if l.brk.cluster == nil {
		return l.brk.one, ""
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.decisionTimeout)
	defer cancel()
	return l.brk.forKey(ctx, redisKey)
}

// share scales a request to this process's share of every limit: for a
// pacing limit the period times the replicas (the rate divided, when that
// would pass MaxSpan), the burst divided and rounded up but never below
// the cost; for a window limit the rate divided, rounded down but never
// below the cost (a longer period would still let a whole window through
// at once). The result lives in buf, so the degraded path allocates
// nothing.
func (l *Limiter) share(r srl.Request, buf *[srl.MaxLimits]srl.Limit) srl.Request {
	n := l.cfg.replicas
	if n <= 1 {
		return r
	}
	scaled := buf[:0]
	for _, set := range [2][]srl.Limit{r.Limits, r.DefaultLimits} {
		for _, lim := range set {
			s := lim
			if lim.Kind == srl.Windowed {
				s.Rate = max(lim.Rate/n, r.N, 1)
				scaled = append(scaled, s)
				continue
			}
			if p := lim.Period * time.Duration(n); p > 0 && p <= srl.MaxSpan {
				s.Period = p
			} else {
				s.Rate = max(lim.Rate/n, 1)
			}
			s.Burst = max((lim.EffectiveBurst()+n-1)/n, r.N)
			scaled = append(scaled, s)
		}
	}
	r.Limits, r.DefaultLimits = scaled[:len(r.Limits)], scaled[len(r.Limits):]
	return r
}

// seed keeps the twin at the fleet's last known quota and block for key,
// in this process's share, so that an outage starts from them.
func (l *Limiter) seed(key string, quotaLimit, quotaRemaining, quotaResetAfter, blockedFor int64) {
	if quotaResetAfter == 0 && blockedFor == 0 {
		return
	}
	n := int64(l.cfg.replicas)
	l.twin.Seed(key, fallback.Seed{
		QuotaLimit:     int(quotaLimit / n),
		QuotaRemaining: int(quotaRemaining / n),
		QuotaReset:     time.Duration(quotaResetAfter) * time.Microsecond,
		BlockedFor:     time.Duration(blockedFor) * time.Microsecond,
	})
}

// Allow is shorthand for AllowN(ctx, key, 1, limits...).
func (l *Limiter) Allow(ctx context.Context, key string, limits ...srl.Limit) (srl.Decision, error) {
	return l.AllowN(ctx, key, 1, limits...)
}

// AllowN decides whether n units may be spent from key's budget now, under
// the given limits and whatever quota or block the servers reported for
// key. It never waits: a refusal carries RetryAfter.
func (l *Limiter) AllowN(ctx context.Context, key string, n int, limits ...srl.Limit) (srl.Decision, error) {
	return l.acquire(ctx, key, nil, srl.Request{Key: key, N: n, Limits: limits})
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
	return l.acquire(ctx, r.Key, r.Costs, r)
}

// acquire is Acquire with r's key and costs apart (r.Key and r.Costs), so
// that what keeps them (the refusal cache, events, the batch) does not
// keep r: escape analysis follows a struct as a whole, and AllowN's limits
// would then be moved to the heap on every decision.
func (l *Limiter) acquire(ctx context.Context, key string, costs []srl.Cost, r srl.Request) (srl.Decision, error) {
	if err := l.usable(); err != nil {
		return srl.Decision{}, err
	}
	if err := r.Validate(); err != nil {
		return srl.Decision{}, err
	}
	sig, asked := l.denials.signature(r), l.cfg.now()
	if d, ok := l.denials.lookup(key, sig, asked); ok {
		l.decided(key, d)
		return d, nil
	}
	rk := RedisKey(l.cfg.prefix, key)
	var buf [srl.MaxLimits]keystate.Limit
	var compiled [srl.MaxQuotas]keystate.Cost
	all, nFixed := keystate.CompileRequest(buf[:], r.Limits, r.DefaultLimits)
	it := keystate.Item{
		N: int64(r.N), MaxWait: min(r.MaxWait, srl.MaxReservation).Microseconds(), All: all, NFixed: nFixed,
		Costs: keystate.CompileCosts(compiled[:], costs), Probe: r.Probe.Microseconds(),
	}
	// call, spelled out: a closure would move it and its buffers to the
	// heap on every decision.
	var res keystate.Result
	ok, err := false, errBreakerOpen
	brk, node := l.breakerFor(ctx, rk)
	if t, useRedis := brk.allow(); useRedis {
		res, err = l.batcherFor(node).acquire(ctx, rk, &it)
		if errors.Is(err, errNodeRetired) {
			// The node stopped being a master while the decision waited:
			// ask the key's master now.
			_, node = l.breakerFor(ctx, rk)
			res, err = l.batcherFor(node).acquire(ctx, rk, &it)
		}
		ok, err = l.settle(ctx, brk, t, key, rk, err)
	}
	var d srl.Decision
	switch {
	case !ok:
		d, err = l.degradedAcquire(ctx, detached(key, costs, r), err)
	case err != nil:
		return srl.Decision{}, err
	default:
		l.seed(key, res.QuotaLimit, res.QuotaRemaining, res.QuotaResetAfter, res.BlockedFor)
		d = res.Decision(&it)
		l.denials.remember(key, sig, d, r.MaxWait, asked)
	}
	if err == nil {
		l.decided(key, d)
	}
	return d, err
}

func (l *Limiter) decided(key string, d srl.Decision) {
	if obs := l.cfg.observer; obs != nil {
		obs.Event(srl.Event{Kind: srl.EventDecided, Key: key, Allowed: d.Allowed, Degraded: d.Degraded, Cause: d.Cause, Wait: d.RetryAfter + d.Delay})
	}
}

// detached is r with key, costs and limits of its own, for the twin to
// keep (see acquire).
func detached(key string, costs []srl.Cost, r srl.Request) srl.Request {
	return srl.Request{
		Key: key, N: r.N, Limits: slices.Clone(r.Limits), DefaultLimits: slices.Clone(r.DefaultLimits),
		Costs: costs, MaxWait: r.MaxWait, Probe: r.Probe,
	}
}

// degradedAcquire decides by the failure policy; cause wraps ErrUnavailable.
func (l *Limiter) degradedAcquire(ctx context.Context, r srl.Request, cause error) (srl.Decision, error) {
	switch l.cfg.policy {
	case FailOpen:
		return srl.Decision{Allowed: true, Remaining: -1, Degraded: true}, nil
	case FailClosed:
		return srl.Decision{Degraded: true}, cause
	}
	var buf [srl.MaxLimits]srl.Limit
	d, err := l.twin.Acquire(ctx, l.share(r, &buf))
	d.Degraded = true
	// The twin's marks mean nothing to Redis, where the response may be
	// observed once it is back: a charge without a mark is settled safely
	// by either.
	d.Charged = unmarked(d.Charged)
	return d, err
}

// unmarked returns charges without their marks (see smartratelimit.Charge).
func unmarked(charges []srl.Charge) []srl.Charge {
	if len(charges) == 0 {
		return charges
	}
	out := make([]srl.Charge, len(charges))
	for i, c := range charges {
		out[i] = srl.Charge{Unit: c.Unit, N: c.N}
	}
	return out
}

// Observe merges what a response said about the server's budget for key
// into the shared state, so every process learns it; see
// smartratelimit.Observation for the rules and the bounds that reject
// garbage. An observation with nothing to store costs no round trip. While
// Redis is unavailable it goes to the in-memory twin (FallbackLocal, in
// this process's share), is dropped (FailOpen) or fails (FailClosed).
func (l *Limiter) Observe(ctx context.Context, key string, o srl.Observation) error {
	return l.ObserveMany(ctx, key, []srl.Observation{o})
}

// MaxObservationsPerCall bounds the observations ObserveMany sends in one
// script call; more take one call per MaxObservationsPerCall.
const MaxObservationsPerCall = 32

// ObserveMany merges several observations of key, in order, as that many
// Observe calls would, in one round trip (one script call per
// MaxObservationsPerCall); it implements smartratelimit.ManyObserver. An
// invalid observation is left out and named in the returned error; the
// others are stored. Redis being unavailable is handled as in Observe.
func (l *Limiter) ObserveMany(ctx context.Context, key string, os []srl.Observation) error {
	if err := l.usable(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	var invalid []error
	valid := make([]srl.Observation, 0, len(os))
	for _, o := range os {
		o, err := o.Normalize()
		if err != nil {
			invalid = append(invalid, err)
			continue
		}
		if !o.IsZero() {
			valid = append(valid, o)
		}
	}
	for start := 0; start < len(valid); start += MaxObservationsPerCall {
		if err := l.observe(ctx, key, valid[start:min(start+MaxObservationsPerCall, len(valid))]); err != nil {
			return errors.Join(append([]error{err}, invalid...)...)
		}
	}
	return errors.Join(invalid...)
}

// observe stores normalized observations of key in one script call.
func (l *Limiter) observe(ctx context.Context, key string, os []srl.Observation) error {
	rk := RedisKey(l.cfg.prefix, key)
	obs, params := make([]keystate.Obs, len(os)), keystate.Params(l.cfg.backoffBase, l.cfg.backoffMax)
	for i := range os {
		obs[i] = keystate.ObsFrom(os[i])
	}
	res, ok, err := call(ctx, l, key, rk, false, func(ctx context.Context, _ string) (keystate.ObserveResult, error) {
		return l.run.ObserveMany(ctx, rk, obs, params)
	})
	switch {
	case !ok:
		switch l.cfg.policy {
		case FailOpen:
			return nil
		case FailClosed:
			return err
		}
		for _, o := range os {
			quotas := make([]srl.QuotaObservation, len(o.Quotas))
			for i, q := range o.Quotas {
				q.Limit /= l.cfg.replicas
				q.Remaining /= l.cfg.replicas
				quotas[i] = q
			}
			o.Quotas = quotas
			o.Charged = unmarked(o.Charged)
			if err := l.twin.Observe(ctx, key, o); err != nil {
				return err
			}
		}
		return nil
	case err != nil:
		return err
	}
	l.seed(key, res.QuotaLimit, res.QuotaRemaining, res.ResetAfter, res.BlockedFor)
	// A learned quota may retire default limits that refused a request.
	l.denials.forget(key)
	return nil
}

// Status returns key's budget as every process sees it, without changing
// it: the server quota, any block, and each given limit.
func (l *Limiter) Status(ctx context.Context, key string, limits ...srl.Limit) (srl.Status, error) {
	return l.Peek(ctx, srl.Request{Key: key, Limits: limits})
}

// Peek is Status for a full request (with default limits); it implements
// smartratelimit.Backend. While Redis is unavailable it reports the
// in-memory twin's view, marked Degraded (FallbackLocal), or fails.
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
	p, ok, err := call(ctx, l, r.Key, rk, false, func(ctx context.Context, _ string) (peeked, error) {
		now, st, err := l.run.Status(ctx, rk, all)
		return peeked{now, st}, err
	})
	switch {
	case !ok && l.cfg.policy == FallbackLocal:
		var buf [srl.MaxLimits]srl.Limit
		st, err := l.twin.Peek(ctx, l.share(r, &buf))
		st.Degraded = true
		return st, err
	case err != nil:
		return srl.Status{}, err
	}
	return p.st.Status(p.now, r.Key, all, nFixed), nil
}

// Reset deletes everything stored for key: its limits' pacing, the learned
// quota and any block, in Redis and in the in-memory twin. It fails with
// ErrUnavailable when Redis cannot be reached, whatever the policy.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.usable(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	if err := l.twin.Reset(ctx, key); err != nil {
		return err
	}
	l.denials.forget(key)
	rk := RedisKey(l.cfg.prefix, key)
	_, _, err := call(ctx, l, key, rk, false, func(ctx context.Context, _ string) (int64, error) {
		return l.rdb.Del(ctx, rk).Result()
	})
	return err
}

// Close stops the limiter: later calls return ErrClosedLimiter. It waits
// (at most 5s) for calls still running against Redis, so that none
// outlives it. It does not close the Redis client, which the caller owns.
func (l *Limiter) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	// One deadline for everything Close waits for, however many nodes.
	deadline := time.Now().Add(closeWait)
	l.batchers.Range(func(_, b any) bool {
		b.(*batcher).close(time.Until(deadline), ErrClosedLimiter)
		return true
	})
	done := make(chan struct{})
	go func() {
		l.calls.Wait()
		close(done)
	}()
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
	}
	return nil
}

// within runs f under the decision budget. When the client ignores context
// deadlines on its sockets, f runs in its own goroutine and is abandoned
// at the deadline; the abandoned call ends at the client's own read
// timeout. A failure is reported as budgetError says.
func within[T any](parent context.Context, l *Limiter, direct bool, f func(context.Context) (T, error)) (T, error) {
	budgetEnds := time.Now().Add(l.cfg.decisionTimeout)
	ctx, cancel := context.WithDeadlineCause(parent, budgetEnds, errDecisionTimeout)
	defer cancel()
	v, err := race(ctx, l, direct, f)
	if err == nil {
		return v, nil
	}
	return v, budgetError(parent, budgetEnds, err)
}

// budgetError is what a call made under parent and a budget ending at
// budgetEnds failed with: the caller's context error when parent ended,
// the exceeded budget when the budget ran out, whatever error the client
// surfaced first (its socket deadline can fire a moment before the
// context's timer), else err.
func budgetError(parent context.Context, budgetEnds time.Time, err error) error {
	if perr := parent.Err(); perr != nil {
		return callerDone{perr}
	}
	now := time.Now()
	if dl, ok := parent.Deadline(); ok && !now.Before(dl) {
		return callerDone{context.DeadlineExceeded}
	}
	if !now.Before(budgetEnds) && !errors.Is(err, errDecisionTimeout) {
		err = fmt.Errorf("%w: %w", errDecisionTimeout, err)
	}
	return err
}

// errTooManyInFlight fails a call at once when too many raced calls are
// still running (a black-holed Redis).
var errTooManyInFlight = fmt.Errorf("%w: %d calls to redis still in flight", context.DeadlineExceeded, maxInFlight)

// race runs f on ctx, directly when f honours ctx (direct), else in a
// goroutine raced against ctx.
func race[T any](ctx context.Context, l *Limiter, direct bool, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if direct {
		return f(ctx)
	}
	if l.inflight.Add(1) > maxInFlight {
		l.inflight.Add(-1)
		return zero, errTooManyInFlight
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	l.calls.Add(1)
	go func() {
		defer l.calls.Done()
		defer l.inflight.Add(-1)
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}
