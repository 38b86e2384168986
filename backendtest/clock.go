package backendtest

import (
	"sync"
	"time"
)

// Epoch is the simulated time every suite test starts from.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is the simulated time of one backend under test. The suite moves
// it; the harness wires it into the backend (miniredis SetTime, a client
// clock, an injected clock) with OnChange. Safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	hooks []func(from, to time.Time)
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the simulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t, forward or backward, and runs the hooks.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	from := c.now
	c.now = t
	hooks := c.hooks
	c.mu.Unlock()
	for _, h := range hooks {
		h(from, t)
	}
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// OnChange registers f to run after every Set, with the old and new time.
func (c *Clock) OnChange(f func(from, to time.Time)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks = append(c.hooks, f)
}
