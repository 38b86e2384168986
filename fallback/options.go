package fallback

import (
	"fmt"
	"time"

	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// Option configures a Store.
type Option func(*config)

type config struct {
	nowMicros               func() int64
	maxKeys                 int
	backoffBase, backoffMax time.Duration
	err                     error
}

func defaultConfig() config {
	return config{
		nowMicros:   keystate.MonotonicMicros(),
		maxKeys:     DefaultMaxKeys,
		backoffBase: keystate.DefaultBackoffBase,
		backoffMax:  keystate.DefaultBackoffMax,
	}
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("fallback: "+format, args...)
	}
}

// WithClock sets the store's clock. Default: the wall time at New advanced
// by the monotonic clock, immune to wall-clock steps.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("nil clock")
			return
		}
		c.nowMicros = func() int64 { return now().UnixMicro() }
	}
}

// WithMaxKeys bounds the number of keys kept. Past it, storing a new key
// evicts one close to expiry, which forgets that key's state (at most one
// extra burst for it). Default 100,000 (a few tens of MB at worst).
func WithMaxKeys(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("max keys %d must be positive", n)
			return
		}
		c.maxKeys = n
	}
}

// WithThrottleBackoff sets how long a key is blocked after a refusal that
// came without Retry-After: base, doubled per consecutive refusal, at most
// max. Defaults 1s and 1m, as in redislimit.
func WithThrottleBackoff(base, max time.Duration) Option {
	return func(c *config) {
		if base <= 0 || max < base || max > time.Hour {
			c.fail("throttle backoff %v..%v: need 0 < base <= max <= 1h", base, max)
			return
		}
		c.backoffBase, c.backoffMax = base, max
	}
}
