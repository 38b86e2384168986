package httpclient

import (
	"context"
	"sync"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Leases: see "Leases" in the package doc.

// MaxLease bounds WithLease's size.
const MaxLease = 64

// LeaseFor is how long a lease's requests may be admitted from memory
// before what is left of it goes back to the fleet: the longest a refusal
// or block another process saw can go unseen by a process holding a lease.
const LeaseFor = 100 * time.Millisecond

// leaseShare: a lease takes at most a leaseShare-th of what a quota has
// left, so a lease of n needs n×leaseShare left.
const leaseShare = 64

// leaseWindow is the least time a quota's window must have left for a
// lease to be taken from it: a lease never spans a window's end.
const leaseWindow = 10 * LeaseFor

// maxLeaseKeys bounds the keys whose leases a Transport remembers.
const maxLeaseKeys = 4096

// leases holds, per key, the requests this process took from the shared
// budget ahead of need. It is safe for concurrent use.
type leases struct {
	size int // WithLease; below 2 nothing is leased
	mu   sync.Mutex
	keys map[string]*keyLease
}

// keyLease is one key's lease, if any, and the size of the next one.
type keyLease struct {
	// next is the size the next lease of the key may take, from what the
	// key's last decision saw of its quota; below 2, none.
	next int
	cur  *lease
	// drops counts the drops of the key's lease (its own refusals and
	// failures): a lease decided while one happened is not granted.
	drops uint64
}

// lease is a number of requests taken from the shared budget in one
// decision, admitted one by one from memory until until.
type lease struct {
	left   int
	permit srl.Decision // what each request admitted from it is told
	until  time.Time
	timer  *time.Timer
}

// plain reports whether r is a request a lease may admit: one request,
// no configured limit, no cost in another unit.
func plain(r srl.Request) bool {
	return len(r.Limits) == 0 && len(r.Costs) == 0 && r.N == 1
}

// take admits plain request r from its key's lease when one is in force;
// otherwise it returns the size of the lease r may take (below 2: none)
// and when, which grant checks.
func (l *leases) take(r srl.Request, now time.Time) (permit srl.Decision, size int, at leaseTaken, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[r.Key]
	if e == nil {
		return srl.Decision{}, 0, leaseTaken{}, false
	}
	if cur := e.cur; cur != nil && cur.left > 0 && now.Before(cur.until) {
		cur.left--
		return cur.permit, 0, leaseTaken{}, true
	}
	at = leaseTaken{entry: e, drops: e.drops}
	size = e.next
	for _, d := range r.DefaultLimits {
		// A known quota sets default limits aside, but the request must
		// still be one they could admit.
		size = min(size, d.EffectiveBurst())
	}
	return srl.Decision{}, size, at, false
}

// leaseTaken is the state of a key's entry when take sized its next
// lease: grant keeps the lease only if the entry is the same and saw no
// drop since, so that a refusal this process got while the lease was
// being decided ends it before it starts.
type leaseTaken struct {
	entry *keyLease
	drops uint64
}

// leasable reports whether d, an admission by the backend, may become a
// lease: made with the shared backend, at once, on a key whose one quota,
// in requests, the fleet knows and whose window has time left, with no
// probe or streak waiting on a response (Report alone, a spend to settle,
// each leased request's response does).
func leasable(d srl.Decision) bool {
	q := d.Quota
	return d.Allowed && !d.Degraded && d.Delay == 0 && !d.ReportNow && len(d.Charged) == 1 &&
		d.Charged[0].Unit == srl.UnitRequests && q.Known && (q.Unit == "" || q.Unit == srl.UnitRequests) &&
		q.ResetAfter >= leaseWindow
}

// nextSize is the size of lease a key whose last decision was d may take:
// none unless more than an eighth of its quota is left.
func (l *leases) nextSize(d srl.Decision) int {
	if !leasable(d) || d.Quota.Remaining*8 <= d.Quota.Limit {
		return 0
	}
	return min(l.size, d.Quota.Remaining/leaseShare)
}

// note records what key's decision d, not from a lease, saw.
func (l *leases) note(key string, d srl.Decision) {
	next := l.nextSize(d)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entry(key, next >= 2); e != nil {
		e.next = next
	}
}

// entry returns key's entry, making one when create is set and there is
// room. l.mu is held.
func (l *leases) entry(key string, create bool) *keyLease {
	if e := l.keys[key]; e != nil || !create {
		return e
	}
	if l.keys == nil {
		l.keys = map[string]*keyLease{}
	}
	if len(l.keys) >= maxLeaseKeys {
		for k, e := range l.keys {
			if e.cur == nil {
				delete(l.keys, k)
			}
		}
		if len(l.keys) >= maxLeaseKeys {
			return nil
		}
	}
	e := &keyLease{}
	l.keys[key] = e
	return e
}

// grant makes d, the admission of n requests of key sized by take at at,
// its lease, and returns the decision of the first of them and what was
// left of the lease it replaces (one that ran out of time, or one a
// concurrent request took meanwhile), to give back. It reports false,
// having kept nothing, when d may not be leased, or when the key's lease
// was dropped since take (or its entry forgotten). expire is called with
// the lease when its time is up.
func (l *leases) grant(key string, d srl.Decision, n int, at leaseTaken, now time.Time, expire func(*lease)) (permit srl.Decision, replaced int, ok bool) {
	if !leasable(d) || d.Charged[0].N != n {
		return srl.Decision{}, 0, false
	}
	permit = d
	permit.Charged = []srl.Charge{{Unit: srl.UnitRequests, N: 1, Mark: d.Charged[0].Mark}}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil || e != at.entry || e.drops != at.drops {
		return srl.Decision{}, 0, false
	}
	replaced = e.release()
	cur := &lease{left: n - 1, permit: permit, until: now.Add(LeaseFor)}
	cur.timer = time.AfterFunc(LeaseFor, func() { expire(cur) })
	e.cur, e.next = cur, l.nextSize(d)
	return permit, replaced, true
}

// end takes what is left of cur, key's lease, and forgets it.
func (l *leases) end(key string, cur *lease) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.keys[key]; e != nil && e.cur == cur {
		e.cur = nil
	}
	left := cur.left
	cur.left = 0
	return left
}

// release ends e's lease, if any, and returns what was left of it. l.mu
// is held.
func (e *keyLease) release() int {
	cur := e.cur
	if cur == nil {
		return 0
	}
	e.cur = nil
	cur.timer.Stop()
	left := cur.left
	cur.left = 0
	return left
}

// drop ends key's lease, if any, and returns what was left of it; the
// next request of key is decided by the backend, as is the next lease.
func (l *leases) drop(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		return 0
	}
	e.next = 0
	e.drops++
	return e.release()
}

// dropAll ends every lease and returns what was left of each, by key.
func (l *leases) dropAll() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	left := map[string]int{}
	for k, e := range l.keys {
		e.drops++
		if n := e.release(); n > 0 {
			left[k] = n
		}
	}
	return left
}

// decide admits r: from the key's lease when one is in force, else by
// the backend, taking a lease when the key's last decision saw a roomy
// quota (WithLease).
func (t *Transport) decide(ctx context.Context, r srl.Request, budget time.Time) (srl.Decision, error) {
	if t.leases.size < 2 || t.deferred == nil || t.cfg.inlineObserve || !plain(r) {
		return t.admit(ctx, r, budget)
	}
	d, n, taken, ok := t.leases.take(r, time.Now())
	if ok {
		t.emit(srl.Event{Kind: srl.EventDecided, Key: r.Key, Allowed: true, Leased: true})
		return d, nil
	}
	if n < 2 {
		d, err := t.admit(ctx, r, budget)
		t.leases.note(r.Key, d)
		return d, err
	}
	whole := r
	whole.N = n // MaxWait 0: a lease is taken at once or not at all
	d, err := t.backend.Acquire(ctx, whole)
	if err != nil {
		t.endLease(r.Key)
		return d, err
	}
	if !d.Allowed {
		// Less left than the key's last decision saw: decide this request
		// alone, as without a lease.
		t.endLease(r.Key)
		d, err := t.admit(ctx, r, budget)
		t.leases.note(r.Key, d)
		return d, err
	}
	permit, replaced, ok := t.leases.grant(r.Key, d, n, taken, time.Now(), func(cur *lease) { t.refund(r.Key, t.leases.end(r.Key, cur)) })
	if ok {
		t.refund(r.Key, replaced)
		return permit, nil
	}
	// Admitted but not leasable (decided without Redis, say), or this
	// process was refused meanwhile: keep one, give the rest back.
	t.endLease(r.Key)
	if len(d.Charged) > 0 && d.Charged[0].Unit == srl.UnitRequests {
		d.Charged = append([]srl.Charge{{Unit: srl.UnitRequests, N: 1, Mark: d.Charged[0].Mark}}, d.Charged[1:]...)
	}
	t.refund(r.Key, n-1)
	return d, nil
}

// endLease ends key's lease, if any, and gives back what was left of it;
// the next request of key is decided by the backend.
func (t *Transport) endLease(key string) {
	t.refund(key, t.leases.drop(key))
}

// refund gives n leased requests of key back to the fleet, in the
// background with the key's deferred observations.
func (t *Transport) refund(key string, n int) {
	if n <= 0 {
		return
	}
	costs := []srl.Cost{{Unit: srl.UnitRequests, N: n}}
	t.emit(srl.Event{Kind: srl.EventRefunded, Key: key, Costs: costs})
	o := srl.Observation{Refunded: costs}
	if !t.deferred.observe(key, o) {
		ctx, cancel := context.WithTimeout(context.Background(), deferredObserveTimeout)
		defer cancel()
		_ = t.deferred.storeNow(ctx, key, o)
	}
}
