package redislimit

import (
	"fmt"
	"strings"
	"time"

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
	err             error
}

// Defaults of the options below.
const (
	DefaultDecisionTimeout = 50 * time.Millisecond
	DefaultBackoffBase     = keystate.DefaultBackoffBase
	DefaultBackoffMax      = keystate.DefaultBackoffMax
)

func defaultConfig() config {
	return config{
		prefix:          DefaultKeyPrefix,
		decisionTimeout: DefaultDecisionTimeout,
		now:             time.Now,
		backoffBase:     DefaultBackoffBase,
		backoffMax:      DefaultBackoffMax,
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
