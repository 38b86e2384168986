package redislimit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
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
	changes   transitions
}

type transition struct {
	degraded bool
	cause    error
}

// transitions hands degraded/recovered transitions to a callback exactly
// once each and in order, never under the owner's lock: the owner queues
// a transition while it holds its own lock (so the queue's order is the
// order of its state changes), then delivers after releasing it.
type transitions struct {
	mu        sync.Mutex
	pending   []transition
	deliverMu sync.Mutex
}

func (q *transitions) add(t transition) {
	q.mu.Lock()
	q.pending = append(q.pending, t)
	q.mu.Unlock()
}

// deliver runs f for every queued transition, in order; a nil f drops
// them.
func (q *transitions) deliver(f func(degraded bool, cause error)) {
	q.deliverMu.Lock()
	defer q.deliverMu.Unlock()
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.mu.Unlock()
			return
		}
		t := q.pending[0]
		q.pending = q.pending[1:]
		q.mu.Unlock()
		if f != nil {
			f(t.degraded, t.cause)
		}
	}
}

// ticket is what allow hands a call that may use Redis.
type ticket struct {
	probe bool
	gen   uint64
}

// allow reports whether this call may use Redis, with its ticket; a probe
// must then report success, failure or release.
func (b *breaker) allow() (ticket, bool) {
	if !b.open.Load() {
		return ticket{gen: b.gen.Load()}, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open.Load() {
		return ticket{gen: b.gen.Load()}, true
	}
	if b.probing || time.Now().Before(b.nextProbe) {
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
			b.changes.add(transition{degraded: false})
		}
		b.mu.Unlock()
		b.changes.deliver(b.onChange)
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
		b.changes.add(transition{degraded: true, cause: cause})
	}
	b.mu.Unlock()
	b.changes.deliver(b.onChange)
}

// retire closes a breaker whose node no longer serves anything.
func (b *breaker) retire() {
	b.mu.Lock()
	if b.open.Load() {
		b.open.Store(false)
		b.gen.Add(1)
		b.changes.add(transition{degraded: false})
	}
	b.mu.Unlock()
	b.changes.deliver(b.onChange)
}

// release ends a probe that told nothing (the caller gave up first).
func (b *breaker) release(t ticket) {
	if t.probe {
		b.mu.Lock()
		b.probing = false
		b.mu.Unlock()
	}
}

// breakers holds one breaker per Redis Cluster master (one in all for
// other clients), so that a dead master degrades the keys of its slots
// only. The limiter is degraded while any breaker is open; onChange hears
// the limiter's transitions (none open ↔ some open) once each, in order.
type breakers struct {
	cluster  *redis.ClusterClient
	one      *breaker
	newNode  func() *breaker
	nodes    sync.Map // master address → *breaker
	onChange func(degraded bool, cause error)
	// onSweep hears the masters a sweep found, so the limiter can retire
	// what it keeps per node.
	onSweep func(masters map[string]bool)

	mu        sync.Mutex
	openCount int
	changes   transitions
	lastSweep atomic.Int64 // unix nanos of the last retireStale
}

func newBreakers(rdb redis.UniversalClient, threshold int, probeMin, probeMax time.Duration, onChange func(bool, error)) *breakers {
	bs := &breakers{onChange: onChange}
	bs.newNode = func() *breaker {
		return &breaker{threshold: int32(threshold), probeMin: probeMin, probeMax: probeMax, onChange: bs.nodeChanged}
	}
	bs.one = bs.newNode()
	if c, ok := rdb.(*redis.ClusterClient); ok {
		bs.cluster = c
	}
	return bs
}

// forKey returns the breaker of the node serving redisKey, and the node's
// address ("" when it cannot be told, or without a cluster). The
// cluster's slot table is cached by go-redis; the lookup only does I/O
// while the table loads, bounded by ctx. A key whose master cannot be told
// shares the limiter-wide breaker.
func (bs *breakers) forKey(ctx context.Context, redisKey string) (*breaker, string) {
	if bs.cluster == nil {
		return bs.one, ""
	}
	node, err := bs.cluster.MasterForKey(ctx, redisKey)
	if err != nil {
		return bs.one, ""
	}
	addr := node.Options().Addr
	b, ok := bs.nodes.Load(addr)
	if !ok {
		b, _ = bs.nodes.LoadOrStore(addr, bs.newNode())
	}
	// After a failover no key maps to the dead master any more, so its
	// breaker would stay open forever, and a node removed from the cluster
	// keeps what the limiter holds for it: look for masters that are gone,
	// at most once a second while any breaker is open, else every 10s.
	every := sweepEvery
	if bs.degraded() {
		every = time.Second
	}
	if last := bs.lastSweep.Load(); time.Since(time.Unix(0, last)) > every &&
		bs.lastSweep.CompareAndSwap(last, time.Now().UnixNano()) {
		bs.retireStale(ctx)
	}
	return b.(*breaker), addr
}

// sweepEvery spaces the sweeps for gone masters while nothing is degraded.
const sweepEvery = 10 * time.Second

// retireStale closes and forgets the breakers of addresses that are no
// longer masters.
func (bs *breakers) retireStale(ctx context.Context) {
	var mu sync.Mutex
	masters := map[string]bool{}
	err := bs.cluster.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		masters[c.Options().Addr] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		return
	}
	bs.nodes.Range(func(addr, b any) bool {
		if !masters[addr.(string)] {
			bs.nodes.Delete(addr)
			b.(*breaker).retire()
		}
		return true
	})
	if bs.onSweep != nil && len(masters) > 0 {
		bs.onSweep(masters)
	}
}

// nodeChanged folds one breaker's transition into the limiter's.
func (bs *breakers) nodeChanged(degraded bool, cause error) {
	bs.mu.Lock()
	if degraded {
		bs.openCount++
		if bs.openCount == 1 {
			bs.changes.add(transition{degraded: true, cause: cause})
		}
	} else {
		bs.openCount--
		if bs.openCount == 0 {
			bs.changes.add(transition{degraded: false})
		}
	}
	bs.mu.Unlock()
	bs.changes.deliver(bs.onChange)
}

// degraded reports whether any breaker is open.
func (bs *breakers) degraded() bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.openCount > 0
}

// probes sums the probes of every breaker.
func (bs *breakers) probes() int64 {
	n := bs.one.probes.Load()
	bs.nodes.Range(func(_, b any) bool {
		n += b.(*breaker).probes.Load()
		return true
	})
	return n
}
