package redislimit

import (
	"sync"
	"sync/atomic"
	"time"
)

// breaker decides whether a call may use Redis. Closed, every call does;
// after threshold consecutive infrastructure failures it opens and calls
// skip Redis, except one probe at a time once the probe interval has
// passed. A probe's success closes it; a failed probe doubles the
// interval, up to probeMax.
//
// Transitions are reported to onChange exactly once each and in order,
// without holding the breaker's lock while the callback runs.
type breaker struct {
	threshold          int32
	probeMin, probeMax time.Duration
	onChange           func(degraded bool, cause error)

	open     atomic.Bool
	failures atomic.Int32
	probes   atomic.Int64
	// gen counts transitions; a call's failure counts only in the
	// generation it started in, so a call in flight across a recovery
	// cannot reopen the breaker.
	gen atomic.Uint64

	mu        sync.Mutex
	probing   bool
	nextProbe time.Time
	interval  time.Duration
	pending   []transition

	deliverMu sync.Mutex
}

type transition struct {
	degraded bool
	cause    error
}

// ticket is what allow hands a call that may use Redis.
type ticket struct {
	probe bool
	gen   uint64
}

// allow reports whether this call may use Redis, with its ticket; a probe
// must then report success, failure or release.
func (b *breaker) allow(now time.Time) (ticket, bool) {
	if !b.open.Load() {
		return ticket{gen: b.gen.Load()}, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open.Load() {
		return ticket{gen: b.gen.Load()}, true
	}
	if b.probing || now.Before(b.nextProbe) {
		return ticket{}, false
	}
	b.probing = true
	b.probes.Add(1)
	return ticket{probe: true, gen: b.gen.Load()}, true
}

// success records a call that reached Redis (even one Redis refused for
// configuration reasons: it is up).
func (b *breaker) success(t ticket) {
	if t.probe {
		b.mu.Lock()
		b.probing = false
		if b.open.Load() {
			b.open.Store(false)
			b.failures.Store(0)
			b.gen.Add(1)
			b.pending = append(b.pending, transition{degraded: false})
		}
		b.mu.Unlock()
		b.deliver()
		return
	}
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
}

// failure records an infrastructure failure.
func (b *breaker) failure(t ticket, cause error) {
	b.mu.Lock()
	switch {
	case t.probe:
		b.probing = false
		b.interval = min(2*b.interval, b.probeMax)
		b.nextProbe = time.Now().Add(b.interval)
	case b.open.Load() || t.gen != b.gen.Load():
		// A call that started before the last transition.
	case b.failures.Add(1) >= b.threshold:
		b.open.Store(true)
		b.gen.Add(1)
		b.interval = b.probeMin
		b.nextProbe = time.Now().Add(b.interval)
		b.pending = append(b.pending, transition{degraded: true, cause: cause})
	}
	b.mu.Unlock()
	b.deliver()
}

// release ends a probe that told nothing (the caller gave up first).
func (b *breaker) release(t ticket) {
	if t.probe {
		b.mu.Lock()
		b.probing = false
		b.mu.Unlock()
	}
}

// deliver runs the callback for every pending transition, in order.
func (b *breaker) deliver() {
	if b.onChange == nil {
		b.mu.Lock()
		b.pending = b.pending[:0]
		b.mu.Unlock()
		return
	}
	b.deliverMu.Lock()
	defer b.deliverMu.Unlock()
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.mu.Unlock()
			return
		}
		t := b.pending[0]
		b.pending = b.pending[1:]
		b.mu.Unlock()
		b.onChange(t.degraded, t.cause)
	}
}
