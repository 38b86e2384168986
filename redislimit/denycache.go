package redislimit

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// denyCache remembers refusals Redis gave, so that for a while the same
// request is refused here without a round trip. A refusal is trusted for
// at most MaxRefusalTrust, and never past its own end: what changed
// elsewhere meanwhile (a Reset in another process, a quota learned by
// another process that retires default limits, a newer window a response
// reported, a skewed clock in client-time mode) reaches this process
// within that bound. This process's own observations and resets drop the
// entry at once.
//
// Entries are keyed by the limiter's key (one Limiter has one prefix, so
// it names one Redis key; a hit builds no Redis key) and request
// signature (costs, limits, reservation bound, probe lease), bounded in
// number (32 shards of 1,024), and never outlive their trust. A lookup
// takes its shard's read lock, or no lock at all for the shard's latest
// entry: every goroutine refused on an exhausted hot key reads it at once.
type denyCache struct {
	seed   maphash.Seed
	shards [denyShards]denyShard
}

const (
	denyShards   = 32
	denyPerShard = 1024
	// minCachedWait skips refusals too short to be worth remembering.
	minCachedWait = time.Millisecond
)

// MaxRefusalTrust is the longest a process refuses from its local cache
// before asking Redis again: the bound on how late a change made elsewhere
// (a Reset, a learned quota) reaches it. An exhausted key then costs one
// round trip per second per process and request shape.
const MaxRefusalTrust = time.Second

type denyShard struct {
	mu      sync.RWMutex
	entries map[string]denyEntry
	// latest is the entry remembered last, read without the lock: the
	// goroutines refused on one exhausted key then share no lock word.
	// Changed under mu, with entries.
	latest atomic.Pointer[keyedEntry]
}

// keyedEntry is an entry with its key; never changed once stored.
type keyedEntry struct {
	key string
	e   denyEntry
}

type denyEntry struct {
	sig   uint64
	until time.Time // when the entry stops being trusted (monotonic)
	retry time.Time // when the refusal ends, as Redis said
	d     srl.Decision
	at    time.Time // when Redis refused
}

func newDenyCache() *denyCache {
	c := &denyCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]denyEntry)
	}
	return c
}

// signature hashes what makes two requests the same refusal: the costs,
// the reservation bound, the probe lease and every limit, its kind
// included (a multiply-xorshift over their integers, a word at a time:
// bytewise FNV cost 5% of a decision's CPU).
func (c *denyCache) signature(r srl.Request) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v int64) {
		h = (h ^ uint64(v)) * 0x9e3779b97f4a7c15
		h ^= h >> 29
	}
	mix(int64(r.N))
	mix(int64(r.MaxWait))
	mix(int64(r.Probe))
	mix(int64(len(r.Costs)))
	for _, c := range r.Costs {
		for i := 0; i < len(c.Unit); i++ {
			mix(int64(c.Unit[i]))
		}
		mix(int64(c.N))
	}
	for _, set := range [2][]srl.Limit{r.Limits, r.DefaultLimits} {
		mix(int64(len(set)))
		for _, l := range set {
			mix(int64(l.Kind))
			mix(int64(l.Rate))
			mix(int64(l.Period))
			mix(int64(l.EffectiveBurst()))
		}
	}
	return h
}

func (c *denyCache) shard(key string) *denyShard {
	return &c.shards[maphash.String(c.seed, key)%denyShards]
}

// lookup returns the cached refusal of an identical request, with its
// waits shortened by the time since Redis gave it.
func (c *denyCache) lookup(key string, sig uint64, now time.Time) (srl.Decision, bool) {
	sh := c.shard(key)
	var e denyEntry
	var ok bool
	if latest := sh.latest.Load(); latest != nil && latest.key == key {
		e, ok = latest.e, true
	} else {
		sh.mu.RLock()
		e, ok = sh.entries[key]
		sh.mu.RUnlock()
	}
	if !ok || e.sig != sig || !now.Before(e.until) {
		return srl.Decision{}, false
	}
	d := e.d
	elapsed := now.Sub(e.at)
	d.RetryAfter = max(e.retry.Sub(now), 0)
	d.ResetAfter = max(d.ResetAfter-elapsed, d.RetryAfter)
	if d.Quota.Known {
		d.Quota.ResetAfter = max(d.Quota.ResetAfter-elapsed, 0)
	}
	return d, true
}

// remember stores a refusal Redis gave at now to a request that accepted
// reservations up to maxWait: a refusal by the limits stops being a
// refusal maxWait before its retry time, when the wait would fit a
// reservation. The decision handed out later keeps the refusal's own
// retry time, so a waiter sleeps until the refusal can end.
func (c *denyCache) remember(key string, sig uint64, d srl.Decision, maxWait time.Duration, now time.Time) {
	trusted := d.RetryAfter
	if d.Cause == srl.CauseLimit {
		trusted -= maxWait
	}
	trusted = min(trusted, MaxRefusalTrust)
	if d.Allowed || trusted < minCachedWait {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, exists := sh.entries[key]; !exists && len(sh.entries) >= denyPerShard {
		sh.sweep(now)
	}
	if _, exists := sh.entries[key]; exists || len(sh.entries) < denyPerShard {
		k := strings.Clone(key)
		e := denyEntry{sig: sig, until: now.Add(trusted), retry: now.Add(d.RetryAfter), d: d, at: now}
		sh.entries[k] = e
		sh.latest.Store(&keyedEntry{k, e})
	}
}

// sweep drops expired entries and, when too few had expired, arbitrary
// ones, so that an eighth of the shard is free: a process refusing ever new
// keys pays the sweep once per many refusals, not once per refusal.
func (sh *denyShard) sweep(now time.Time) {
	for k, e := range sh.entries {
		if !now.Before(e.until) {
			delete(sh.entries, k)
		}
	}
	for k := range sh.entries {
		if len(sh.entries) <= denyPerShard-denyPerShard/8 {
			break
		}
		delete(sh.entries, k)
	}
	sh.latest.Store(nil)
}

// forget drops the entry of key.
func (c *denyCache) forget(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	delete(sh.entries, key)
	if latest := sh.latest.Load(); latest != nil && latest.key == key {
		sh.latest.Store(nil)
	}
	sh.mu.Unlock()
}
