package fallback

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
	"github.com/smartratelimit/smartratelimit/internal/wait"
)

// shardCount spreads keys over independent locks; a power of two.
const shardCount = 64

// DefaultMaxKeys is the default bound on stored keys (WithMaxKeys).
const DefaultMaxKeys = 100_000

// Store keeps budgets in process memory with the same arithmetic as the
// Redis scripts. It is safe for concurrent use by multiple goroutines.
type Store struct {
	cfg    config
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu      sync.Mutex
	entries map[string]*entry
	evicted uint64
	// pad keeps neighbouring shards' locks off one cache line.
	_ [40]byte
}

type entry struct {
	st keystate.State
	// expireAt is when the state is forgotten: its horizon plus
	// keystate.Grace, as the Redis TTL would be.
	expireAt int64
}

var _ srl.Backend = (*Store)(nil)

// New returns an empty store. An invalid option makes every method return
// its error.
func New(opts ...Option) *Store {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s := &Store{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].entries = make(map[string]*entry)
	}
	return s
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)&(shardCount-1)]
}

func (s *Store) maxPerShard() int {
	return max(s.cfg.maxKeys/shardCount, 1)
}

// live returns key's entry, or nil when it is absent. An expired entry is
// emptied in place, as an expired Redis key would be gone.
func (sh *shard) live(key string, now int64) *entry {
	e := sh.entries[key]
	if e != nil && e.expireAt <= now {
		e.st = keystate.State{TATs: e.st.TATs[:0], Windows: e.st.Windows[:0]}
		e.expireAt = 0
	}
	return e
}

// insert stores a new entry, first dropping expired entries among a few
// sampled ones and, when the shard is full, evicting the sampled entry
// closest to expiry. Eviction forgets state, which can admit up to one
// extra burst for that key; the bound keeps memory finite whatever the
// key space.
func (sh *shard) insert(key string, e *entry, now int64, maxEntries int) {
	const sample = 8
	victim, victimExpiry, seen := "", int64(math.MaxInt64), 0
	for k, other := range sh.entries {
		if other.expireAt <= now {
			delete(sh.entries, k)
		} else if other.expireAt < victimExpiry {
			victim, victimExpiry = k, other.expireAt
		}
		if seen++; seen >= sample {
			break
		}
	}
	if len(sh.entries) >= maxEntries && victim != "" {
		delete(sh.entries, victim)
		sh.evicted++
	}
	// A copy: the caller's string must not be retained, or escape analysis
	// makes every caller's request (and its limits) escape to the heap.
	sh.entries[strings.Clone(key)] = e
}

func (s *Store) nowMicros() int64 { return s.cfg.nowMicros() }

func (s *Store) ready(ctx context.Context) error {
	if s.cfg.err != nil {
		return s.cfg.err
	}
	return ctx.Err()
}

// Acquire decides one request; it implements smartratelimit.Backend. The
// allowed path allocates nothing once the key exists.
func (s *Store) Acquire(ctx context.Context, r srl.Request) (srl.Decision, error) {
	if err := s.ready(ctx); err != nil {
		return srl.Decision{}, err
	}
	var buf [8]keystate.Limit
	all, nFixed, err := keystate.Prepare(buf[:], r)
	if err != nil {
		return srl.Decision{}, err
	}
	var costs [srl.MaxQuotas]keystate.Cost
	it := keystate.Item{
		N: int64(r.N), MaxWait: r.MaxWait.Microseconds(), All: all, NFixed: nFixed,
		Costs: keystate.CompileCosts(costs[:], r.Costs), Probe: r.Probe.Microseconds(),
	}
	var res keystate.Result
	now := s.nowMicros()
	sh := s.shard(r.Key)
	sh.mu.Lock()
	if e := sh.live(r.Key, now); e != nil {
		if h := e.st.Acquire(now, &it, &res); h > 0 {
			e.expireAt = max(e.expireAt, h+keystate.Grace)
		}
	} else {
		var st keystate.State
		if h := st.Acquire(now, &it, &res); h > 0 {
			sh.insert(r.Key, &entry{st: st, expireAt: h + keystate.Grace}, now, s.maxPerShard())
		}
	}
	sh.mu.Unlock()
	return res.Decision(&it), nil
}

// Observe merges what a response said about the server's budget; see
// smartratelimit.Observation for the rules.
func (s *Store) Observe(ctx context.Context, key string, o srl.Observation) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	o, err := o.Normalize()
	if err != nil || o.IsZero() {
		return err
	}
	obs, params := keystate.ObsFrom(o), keystate.Params(s.cfg.backoffBase, s.cfg.backoffMax)
	s.update(key, func(st *keystate.State, now int64) bool {
		_, changed := st.Observe(now, obs, params)
		return changed
	})
	return nil
}

// update runs f on key's state, creating it when needed, and extends the
// expiry when f reports a change.
func (s *Store) update(key string, f func(st *keystate.State, now int64) bool) {
	now := s.nowMicros()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.live(key, now)
	if e == nil {
		e = &entry{}
		if !f(&e.st, now) {
			return
		}
		e.expireAt = e.st.Horizon() + keystate.Grace
		sh.insert(key, e, now, s.maxPerShard())
		return
	}
	if f(&e.st, now) {
		e.expireAt = max(e.expireAt, e.st.Horizon()+keystate.Grace)
	}
}

// Seed is state learned elsewhere (the shared backend) to start a key from
// instead of a full budget.
type Seed struct {
	// QuotaLimit and QuotaRemaining replace the key's server quota when
	// QuotaReset is positive.
	QuotaLimit, QuotaRemaining int
	QuotaReset                 time.Duration
	// BlockedFor extends the key's block.
	BlockedFor time.Duration
}

// Seed sets key's server quota and extends its block from state the shared
// backend reported. The Redis limiter calls it with its local share after
// each decision that carries a quota or a block, so that when Redis fails
// the store starts from what the fleet last knew, not from a full budget.
func (s *Store) Seed(key string, sd Seed) {
	if key == "" || sd.QuotaReset < 0 || sd.BlockedFor < 0 || sd.QuotaLimit < 0 || sd.QuotaRemaining < 0 {
		return
	}
	reset, blocked := sd.QuotaReset.Microseconds(), sd.BlockedFor.Microseconds()
	if reset == 0 && blocked == 0 {
		return
	}
	s.update(key, func(st *keystate.State, now int64) bool {
		return st.Seed(now, srl.UnitRequests, int64(sd.QuotaLimit), int64(sd.QuotaRemaining), reset, blocked)
	})
}

// Peek returns the key's budget without changing it; it implements
// smartratelimit.Backend.
func (s *Store) Peek(ctx context.Context, r srl.Request) (srl.Status, error) {
	if err := s.ready(ctx); err != nil {
		return srl.Status{}, err
	}
	if err := r.ValidateStatus(); err != nil {
		return srl.Status{}, err
	}
	var buf [8]keystate.Limit
	all, nFixed := keystate.CompileRequest(buf[:], r.Limits, r.DefaultLimits)
	now := s.nowMicros()
	sh := s.shard(r.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var st keystate.State
	if e := sh.live(r.Key, now); e != nil {
		st = e.st
	}
	return st.Status(now, r.Key, all, nFixed), nil
}

// Reset forgets everything stored for key.
func (s *Store) Reset(ctx context.Context, key string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", srl.ErrInvalidRequest)
	}
	sh := s.shard(key)
	sh.mu.Lock()
	delete(sh.entries, key)
	sh.mu.Unlock()
	return nil
}

// Allow is shorthand for AllowN(ctx, key, 1, limits...).
func (s *Store) Allow(ctx context.Context, key string, limits ...srl.Limit) (srl.Decision, error) {
	return s.Acquire(ctx, srl.Request{Key: key, N: 1, Limits: limits})
}

// AllowN decides whether n units may be spent from key's budget now. It
// never waits.
func (s *Store) AllowN(ctx context.Context, key string, n int, limits ...srl.Limit) (srl.Decision, error) {
	return s.Acquire(ctx, srl.Request{Key: key, N: n, Limits: limits})
}

// Wait blocks until one unit of key's budget is admitted, with the same
// rules as redislimit's Wait: reservations slept exactly, quota and block
// waits jittered, a wait past ctx's deadline refused at once.
func (s *Store) Wait(ctx context.Context, key string, limits ...srl.Limit) error {
	_, err := s.WaitRequest(ctx, srl.Request{Key: key, N: 1, Limits: limits})
	return err
}

// WaitRequest is Wait for a full request; r.MaxWait, when positive, bounds
// the total wait.
func (s *Store) WaitRequest(ctx context.Context, r srl.Request) (srl.Decision, error) {
	if err := r.Validate(); err != nil {
		return srl.Decision{}, err
	}
	return wait.For(ctx, s, r, wait.Sleep, time.Now)
}

// Status returns key's budget without changing it.
func (s *Store) Status(ctx context.Context, key string, limits ...srl.Limit) (srl.Status, error) {
	return s.Peek(ctx, srl.Request{Key: key, Limits: limits})
}

// Len returns the number of keys stored, expired ones included until they
// are swept.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

// Evictions returns how many live keys were dropped to respect the key
// bound since the store was made.
func (s *Store) Evictions() uint64 {
	var n uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.evicted
		sh.mu.Unlock()
	}
	return n
}

// limitFields reports how many limit fields (TATs and windows) key holds,
// for the conformance suite.
func (s *Store) limitFields(key string) int {
	now := s.nowMicros()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.live(key, now); e != nil {
		return len(e.st.TATs) + len(e.st.Windows)
	}
	return 0
}

// ttl reports how long key's state will live, for the conformance suite.
func (s *Store) ttl(key string) (time.Duration, bool) {
	now := s.nowMicros()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.live(key, now)
	if e == nil || e.expireAt <= now {
		return 0, false
	}
	return time.Duration(e.expireAt-now) * time.Microsecond, true
}
