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

// deferredFlushAfter is how long a deferred observation waits for others
// of its key, so that a key's responses are stored together, one round
// trip for many, and the store of one request's response does not queue
// in front of the next request's decision.
const deferredFlushAfter = 5 * time.Millisecond

// maxObservationsPerFlush stores a key's deferred observations as soon as
// this many wait, whatever deferredFlushAfter says.
const maxObservationsPerFlush = 32

// deferredObserveTimeout bounds one background store.
const deferredObserveTimeout = 10 * time.Second

// deferredOrderWait bounds how long an observation stored before
// RoundTrip returns waits for its key's background stores already under
// way, so that it is merged after the responses that came before it.
const deferredOrderWait = 500 * time.Millisecond

// deferrer stores observations in the background, each key's together,
// and lets callers wait for those deferred before them. It is safe for
// concurrent use.
type deferrer struct {
	backend srl.Backend
	// after is how long an observation waits for others of its key
	// (deferredFlushAfter).
	after time.Duration
	slots chan struct{}
	mu    sync.Mutex
	next  uint64
	// waiting holds each key's observations not yet sent.
	waiting map[string]*keyBatch
	// sending counts, by key, the batches sent in the background and not
	// yet stored.
	sending map[string]int
	// running holds the tickets of the observations not yet stored;
	// changed is closed (and replaced) whenever some are.
	running map[uint64]struct{}
	changed chan struct{}
}

// keyBatch is one key's observations waiting for their flush, in the order
// their responses arrived, with their tickets.
type keyBatch struct {
	key          string
	observations []srl.Observation
	tickets      []uint64
	timer        *time.Timer
	// background is set once the batch is sent in the background (and
	// counted in sending).
	background bool
}

func newDeferrer(b srl.Backend, after time.Duration) *deferrer {
	return &deferrer{backend: b, after: after, slots: make(chan struct{}, MaxDeferredObserves),
		waiting: map[string]*keyBatch{}, sending: map[string]int{}, running: map[uint64]struct{}{}, changed: make(chan struct{})}
}

// observe defers o for key and reports true, or reports false when
// MaxDeferredObserves are already pending.
func (d *deferrer) observe(key string, o srl.Observation) bool {
	select {
	case d.slots <- struct{}{}:
	default:
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ticket := d.next
	d.next++
	d.running[ticket] = struct{}{}
	p := d.waiting[key]
	if p == nil {
		p = &keyBatch{key: key}
		p.timer = time.AfterFunc(d.after, func() { d.flush(key, p) })
		d.waiting[key] = p
	}
	p.observations = append(p.observations, o)
	p.tickets = append(p.tickets, ticket)
	if len(p.observations) >= maxObservationsPerFlush {
		d.sendLater(p)
		go d.store(p)
	}
	return true
}

// detach takes p, its key's waiting observations, out of d.waiting;
// d.mu is held.
func (d *deferrer) detach(p *keyBatch) {
	p.timer.Stop()
	delete(d.waiting, p.key)
}

// sendLater detaches p to be stored in the background, counting it in
// sending until it is; d.mu is held.
func (d *deferrer) sendLater(p *keyBatch) {
	d.detach(p)
	p.background = true
	d.sending[p.key]++
}

// flush stores p when its timer fires, unless it was taken meanwhile.
func (d *deferrer) flush(key string, p *keyBatch) {
	d.mu.Lock()
	if d.waiting[key] != p {
		d.mu.Unlock()
		return
	}
	d.sendLater(p)
	d.mu.Unlock()
	d.store(p)
}

// store sends p's observations in one call (bounded by its own timeout:
// what a response said outlives the request) and marks them stored.
func (d *deferrer) store(p *keyBatch) {
	ctx, cancel := context.WithTimeout(context.Background(), deferredObserveTimeout)
	defer cancel()
	_ = srl.ObserveMany(ctx, d.backend, p.key, p.observations)
	d.done(p)
}

// done frees the slots of p's observations and then marks them stored,
// so that wait never returns before their slots are free.
func (d *deferrer) done(p *keyBatch) {
	for range p.tickets {
		<-d.slots
	}
	d.mu.Lock()
	for _, ticket := range p.tickets {
		delete(d.running, ticket)
	}
	if p.background {
		if d.sending[p.key]--; d.sending[p.key] == 0 {
			delete(d.sending, p.key)
		}
	}
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// storeNow stores o for key before returning, after the background stores
// of key already under way (waiting for them at most deferredOrderWait or
// until ctx ends) and with the observations of key still waiting (in one
// call, in order), so that o is merged after the responses that came
// before it: a spent quota this response reports is not undone by an
// older, roomier one landing later.
func (d *deferrer) storeNow(ctx context.Context, key string, o srl.Observation) error {
	d.mu.Lock()
	if d.sending[key] > 0 {
		late := time.NewTimer(deferredOrderWait)
		for waited := false; d.sending[key] > 0 && !waited; {
			changed := d.changed
			d.mu.Unlock()
			select {
			case <-changed:
			case <-late.C:
				waited = true
			case <-ctx.Done():
				waited = true
			}
			d.mu.Lock()
		}
		late.Stop()
	}
	p := d.waiting[key]
	if p != nil {
		d.detach(p)
	}
	d.mu.Unlock()
	if p == nil {
		return d.backend.Observe(ctx, key, o)
	}
	err := srl.ObserveMany(ctx, d.backend, key, append(p.observations, o))
	d.done(p)
	return err
}

// wait sends every observation deferred before the call at once and
// returns when they are stored, or with ctx's error.
func (d *deferrer) wait(ctx context.Context) error {
	d.mu.Lock()
	limit := d.next
	for _, p := range d.waiting {
		d.sendLater(p)
		go d.store(p)
	}
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
// quota at or under an eighth of its limit (the limit the fleet knows,
// when the response does not say one).
func (t *Transport) mayDefer(d srl.Decision, o srl.Observation) bool {
	if t.cfg.inlineObserve || t.deferred == nil || d.ReportNow || !d.Quota.Known || !o.Succeeded || o.Limited || o.RetryAfter > 0 {
		return false
	}
	roomy := func(limit, remaining int) bool { return remaining >= 2 && remaining*8 > limit }
	limit := o.Limit
	if limit <= 0 {
		// A response that leaves its limit unsaid is measured against
		// the one the fleet knows.
		limit = d.Quota.Limit
	}
	if (o.Limit > 0 || o.Reset > 0) && !roomy(limit, o.Remaining) {
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
