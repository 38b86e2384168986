package sqlitelimit

import (
	"fmt"
	"time"

	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// Option configures a Store.
type Option func(*config)

// Defaults of the options below.
const (
	// DefaultBusyTimeout is how long one decision waits for another
	// process's transaction to end (WithBusyTimeout).
	DefaultBusyTimeout = 5 * time.Second
	// DefaultSweepInterval is how often expired keys are deleted
	// (WithSweepInterval).
	DefaultSweepInterval = time.Minute
)

type config struct {
	nowMicros               func() int64
	busyTimeout             time.Duration
	sweepInterval           time.Duration
	backoffBase, backoffMax time.Duration
	fullSync                bool
	err                     error
}

func defaultConfig() config {
	return config{
		nowMicros:     keystate.MonotonicMicros(),
		busyTimeout:   DefaultBusyTimeout,
		sweepInterval: DefaultSweepInterval,
		backoffBase:   keystate.DefaultBackoffBase,
		backoffMax:    keystate.DefaultBackoffMax,
	}
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("sqlitelimit: "+format, args...)
	}
}

// WithClock sets the store's clock, for tests. Default: the wall time at
// Open advanced by the monotonic clock, immune to wall-clock steps. Every
// process sharing a file must use the same time base.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("nil clock")
			return
		}
		c.nowMicros = func() int64 { return now().UnixMicro() }
	}
}

// WithBusyTimeout sets how long one decision (or Open) keeps retrying
// while another process holds the database's write lock, within the
// caller's context; past it the call fails with an error wrapping
// ErrBusy. Default 5s (DefaultBusyTimeout). A decision holds the lock
// for tens of microseconds, so a wait that long means a process is stuck
// inside a transaction, or the file is on a file system whose locks do
// not work (NFS).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 || d > time.Hour {
			c.fail("busy timeout %v: need 0 < timeout <= 1h", d)
			return
		}
		c.busyTimeout = d
	}
}

// WithSweepInterval sets how often the store deletes the keys whose state
// expired (one second past their horizon, as in Redis). Expired keys
// already behave as absent; the sweep keeps the file bounded by the keys
// live within the last interval. 0 disables the sweep (another process on
// the same file may still sweep it; Sweep runs one by hand). Default 1m
// (DefaultSweepInterval).
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("negative sweep interval %v", d)
			return
		}
		c.sweepInterval = d
	}
}

// WithThrottleBackoff sets how long a key is blocked after a refusal that
// came without Retry-After: base, doubled per consecutive refusal, at most
// max. Defaults 1s and 1m, as in redislimit and fallback. Every process
// sharing a file should use the same values.
func WithThrottleBackoff(base, max time.Duration) Option {
	return func(c *config) {
		if base <= 0 || max < base || max > time.Hour {
			c.fail("throttle backoff %v..%v: need 0 < base <= max <= 1h", base, max)
			return
		}
		c.backoffBase, c.backoffMax = base, max
	}
}

// WithFullSync makes every commit wait for the disk (PRAGMA
// synchronous=FULL), so that a decision survives a power loss or a kernel
// crash, at the price of an fsync per decision. Default off
// (synchronous=NORMAL): a committed decision survives the process's
// death, SIGKILL included, and the database is never corrupted, but the
// last decisions before a power loss may be rolled back, which at worst
// lets their budget be spent once more.
func WithFullSync() Option {
	return func(c *config) { c.fullSync = true }
}
