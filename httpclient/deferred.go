package httpclient

import (
	"context"
	"sync"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
)

// Deferred observations: see "One round trip per request" in the package doc.

// MaxDeferredObserves bounds the observations a Transport stores in the
// background at once; past it they are stored before RoundTrip returns.
const MaxDeferredObserves = 128

// deferredObserveTimeout bounds one background observation.
const deferredObserveTimeout = 10 * time.Second

// deferrer runs observations in the background and lets callers wait for
// those started before them. It is safe for concurrent use.
type deferrer struct {
	slots chan struct{}
	mu    sync.Mutex
	next  uint64
	// running holds the tickets of the observations not yet stored;
	// changed is closed (and replaced) whenever one is.
	running map[uint64]struct{}
	changed chan struct{}
}

func newDeferrer() *deferrer {
	return &deferrer{slots: make(chan struct{}, MaxDeferredObserves), running: map[uint64]struct{}{}, changed: make(chan struct{})}
}

// observe stores o for key in the background and reports true, or reports
// false when MaxDeferredObserves are already pending.
func (d *deferrer) observe(ctx context.Context, b srl.Backend, key string, o srl.Observation) bool {
	select {
	case d.slots <- struct{}{}:
	default:
		return false
	}
	d.mu.Lock()
	ticket := d.next
	d.next++
	d.running[ticket] = struct{}{}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deferredObserveTimeout)
	go func() {
		defer cancel()
		_ = b.Observe(ctx, key, o)
		d.mu.Lock()
		delete(d.running, ticket)
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
		<-d.slots
	}()
	return true
}

// wait returns once every observation deferred before the call is stored,
// or with ctx's error.
func (d *deferrer) wait(ctx context.Context) error {
	d.mu.Lock()
	limit := d.next
	for {
		pending := false
		for ticket := range d.running {
			if ticket < limit {
				pending = true
				break
			}
		}
		if !pending {
			d.mu.Unlock()
			return nil
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
		d.mu.Lock()
	}
}

// mayDefer reports whether the observation of a response may be stored
// after RoundTrip returns: the backend is across the network, the fleet
// knew the key's quota when the request was admitted and no probe or
// streak waits on this response, which is a success that advertises no
// quota at or under an eighth of its limit.
func (t *Transport) mayDefer(d srl.Decision, o srl.Observation) bool {
	if t.cfg.inlineObserve || t.deferred == nil || d.ReportNow || !d.Quota.Known || !o.Succeeded || o.Limited || o.RetryAfter > 0 {
		return false
	}
	roomy := func(limit, remaining int) bool { return remaining >= 2 && remaining*8 > limit }
	if (o.Limit > 0 || o.Reset > 0) && !roomy(o.Limit, o.Remaining) {
		return false
	}
	for _, q := range o.Quotas {
		if !roomy(q.Limit, q.Remaining) {
			return false
		}
	}
	return true
}

// remote reports whether b stores its state across the network or in a
// file (everything but the in-memory store), where an observation costs a
// round trip worth deferring.
func remote(b srl.Backend) bool {
	_, inMemory := b.(*fallback.Store)
	return !inMemory
}
