package redislimit

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// Option configures a Limiter.
type Option func(*config)

type config struct {
	prefix          string
	decisionTimeout time.Duration
	clientTime      bool
	now             func() time.Time
	backoffBase     time.Duration
	backoffMax      time.Duration
	policy          Policy
	replicas        int
	twin            *fallback.Store
	threshold       int
	probeMin        time.Duration
	probeMax        time.Duration
	onDegraded      func(degraded bool, cause error)
	observer        srl.Observer
	err             error
}

// Defaults of the options below.
const (
	DefaultDecisionTimeout = 50 * time.Millisecond
	DefaultBackoffBase     = keystate.DefaultBackoffBase
	DefaultBackoffMax      = keystate.DefaultBackoffMax
	DefaultBreakerFailures = 3
	DefaultProbeMin        = 250 * time.Millisecond
	DefaultProbeMax        = 2 * time.Second
)

func defaultConfig() config {
	return config{
		prefix:          DefaultKeyPrefix,
		decisionTimeout: DefaultDecisionTimeout,
		now:             time.Now,
		backoffBase:     DefaultBackoffBase,
		backoffMax:      DefaultBackoffMax,
		policy:          FallbackLocal,
		replicas:        1,
		threshold:       DefaultBreakerFailures,
		probeMin:        DefaultProbeMin,
		probeMax:        DefaultProbeMax,
	}
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("redislimit: "+format, args...)
	}
}

// WithKeyPrefix sets the prefix of every Redis key the limiter writes, so
// that several applications can share one Redis. It must not contain a
// brace, which would break the hash tag (see RedisKey). Default "srl:".
func WithKeyPrefix(prefix string) Option {
	return func(c *config) {
		if strings.ContainsAny(prefix, "{}") {
			c.fail("key prefix %q must not contain braces", prefix)
			return
		}
		c.prefix = prefix
	}
}

// WithDecisionTimeout sets the decision budget: the longest one call waits
// for Redis. The limiter enforces it itself, whether or not the go-redis
// client honours context deadlines (a client without
// ContextTimeoutEnabled ignores them on sockets). Default 50ms.
func WithDecisionTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("decision timeout %v must be positive", d)
			return
		}
		c.decisionTimeout = d
	}
}

// WithClientTime makes the limiter pass this process's clock to the scripts
// instead of reading Redis's TIME, for managed Redis offerings that refuse
// TIME inside scripts. Every process sharing a budget must then have a
// synchronised clock: skew between them turns into over- or
// under-admission. Default off (server time).
func WithClientTime() Option {
	return func(c *config) { c.clientTime = true }
}

// WithClientClock is WithClientTime with the clock now instead of
// time.Now: for a corrected clock, or for tests that drive real Redis
// through simulated time.
func WithClientClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("nil clock")
			return
		}
		c.clientTime, c.now = true, now
	}
}

// withClock sets the clock of local bookkeeping (the refusal cache) when
// Redis's own clock decides, for tests that move time by hand.
func withClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithThrottleBackoff sets how long a key is blocked after a refusal that
// came without Retry-After (a bare 429): base for the first, doubled for
// each consecutive refusal, at most max. Defaults 1s and 1m.
func WithThrottleBackoff(base, max time.Duration) Option {
	return func(c *config) {
		if base <= 0 || max < base || max > time.Hour {
			c.fail("throttle backoff %v..%v: need 0 < base <= max <= 1h", base, max)
			return
		}
		c.backoffBase, c.backoffMax = base, max
	}
}

// Policy says what a Limiter does while Redis is unavailable.
type Policy int

const (
	// FallbackLocal (the default) decides from the in-memory twin, which
	// serves this process's share of every limit (WithReplicas) and starts
	// from the last quota and block this process saw from Redis. Across a
	// fleet of N processes the admitted total stays within N × share × limit.
	FallbackLocal Policy = iota
	// FailOpen admits everything, marked Degraded: for calls that matter
	// more than the limit.
	FailOpen
	// FailClosed refuses everything with an error wrapping ErrUnavailable:
	// for limits that protect something that must never be exceeded.
	FailClosed
)

// String returns "fallback-local", "fail-open" or "fail-closed".
func (p Policy) String() string {
	switch p {
	case FallbackLocal:
		return "fallback-local"
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return "unknown"
}

// WithFailurePolicy sets what the limiter does while Redis is unavailable.
// Default FallbackLocal.
func WithFailurePolicy(p Policy) Option {
	return func(c *config) {
		if p < FallbackLocal || p > FailClosed {
			c.fail("unknown failure policy %d", p)
			return
		}
		c.policy = p
	}
}

// WithReplicas sets how many processes share each budget, so that under
// FallbackLocal each serves 1/n of every limit and of the last known
// quota: the fleet as a whole then stays within the limit during an
// outage. Default 1 (each process may use the whole limit, so a fleet of
// N can admit N times it while Redis is down).
func WithReplicas(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("replicas %d must be at least 1", n)
			return
		}
		c.replicas = n
	}
}

// WithFallback sets the in-memory store used under FallbackLocal, e.g. to
// bound its keys or share it. Default: fallback.New with this limiter's
// throttle backoff.
func WithFallback(s *fallback.Store) Option {
	return func(c *config) {
		if s == nil {
			c.fail("nil fallback store")
			return
		}
		c.twin = s
	}
}

// WithBreaker sets when the limiter stops calling Redis: after failures
// consecutive infrastructure failures, and how often it then probes (one
// call at a time, first after probeMin, the interval doubling after each
// failed probe up to probeMax). Defaults 3, 250ms, 2s.
func WithBreaker(failures int, probeMin, probeMax time.Duration) Option {
	return func(c *config) {
		if failures < 1 || probeMin <= 0 || probeMax < probeMin {
			c.fail("breaker %d, %v..%v: need failures >= 1 and 0 < probeMin <= probeMax", failures, probeMin, probeMax)
			return
		}
		c.threshold, c.probeMin, c.probeMax = failures, probeMin, probeMax
	}
}

// WithOnDegraded registers f to be called when the limiter stops using
// Redis (degraded true, with the failure that tripped it) and when it is
// back (degraded false). Each transition is reported exactly once and in
// order, even when Redis flaps. f runs on the goroutine whose call caused
// the transition and must not block.
func WithOnDegraded(f func(degraded bool, cause error)) Option {
	return func(c *config) { c.onDegraded = f }
}

// WithObserver sends the limiter's events to o: every decision
// (EventDecided), failed backend calls (EventBackendError) and degraded
// transitions (EventDegradedChange). Pass a *metrics.Collector to export
// them. May be given several times. Default none.
func WithObserver(o srl.Observer) Option {
	return func(c *config) { c.observer = srl.Observers(c.observer, o) }
}

// WithLogger logs backend errors and degraded transitions through l (see
// smartratelimit.NewLogObserver). Default: silent.
func WithLogger(l *slog.Logger) Option {
	return WithObserver(srl.NewLogObserver(l))
}
