// Package redislimit keeps rate-limit budgets in Redis so that every
// process of a fleet spends from the same budget, and decides each request
// with one atomic Lua script.
//
// # Model
//
// A key (say "api.github.com") names one budget. All of its state is one
// Redis hash, <prefix>{<key>} (see RedisKey), holding:
//
//   - one GCRA theoretical arrival time per configured limit;
//   - the server's quota (limit, remaining, reset) learned through Observe;
//   - a block until a time, from Retry-After or from 429s without it.
//
// A decision (Allow, AllowN, Wait, Acquire) checks every dimension at once
// and spends from all of them, or from none. Times are integer
// microseconds on the Redis server's clock, so the clocks of the pods never
// meet; WithClientTime switches to the caller's clock for servers that
// refuse TIME in scripts. The state lives one to two seconds past its
// horizon, so idle keys vanish by themselves.
//
// # Cost of a decision
//
// At most one EVALSHA round trip, usually shared. Decisions wait in a
// per-node queue that a few workers drain (GOMAXPROCS of them, at least 3
// and at most 8): each worker takes whatever is waiting, having yielded
// once when that is fewer than 8, and groups it by key (the requests of a
// hot key are decided in order, together). On one server the batch's
// keys go in one script call (up to scripts.MaxKeysPerCall, 64, a call;
// more make a pipeline); on a cluster, the keys of one slot share a call;
// a Ring or another client gets a call per key. An idle process pays a goroutine handoff, not a
// delay; a busy one pays a fraction of a round trip and of a script run
// per decision. Batches never span cluster nodes, and a key that holds
// something other than a hash fails alone. A key of plain requests
// (pacing limits only) that holds nothing but their arrival times runs
// one read (HGETALL for one limit; HLEN and an HMGET of those fields for
// several) and HSET; a batch's identical requests for it travel once with
// a count, and keys whose requests are the previous key's in the call
// travel as two arguments in all ("=" and how many), and a key of one
// limit is answered in two integers. Any other key runs HMGET and HSET. A
// call runs one TIME; the hash remembers when its TTL ends, so most writes
// leave the TTL alone.
//
// A refusal is remembered in process until the earliest moment it could
// end (for a request that accepts a reservation, that much earlier), and
// an identical request for that key (same cost, limits and reservation
// bound) is refused locally without a round trip: nothing another process
// does can make it sooner, except a Reset or a newly learned quota that
// lifts default limits. Observe and Reset in this process forget the
// key's entry; those made elsewhere are seen once the remembered wait
// ends. This is what makes an exhausted key cheap for the whole fleet.
//
// After SCRIPT FLUSH, a restart or a failover the script cache is empty;
// the next call sends the script once with EVAL and the caller sees no
// error. Each call is bounded by the decision budget (WithDecisionTimeout,
// 50ms by default), which the limiter enforces itself: a go-redis client
// without ContextTimeoutEnabled ignores context deadlines on its sockets,
// so such calls are made by another goroutine (a batch worker, or one of
// their own) and abandoned at the deadline.
//
// # When Redis fails
//
// Consecutive infrastructure failures (WithBreaker; default 3) open a
// breaker: decisions then follow the failure policy without touching
// Redis, and one probe at a time (first after 250ms, then at doubling
// intervals up to 2s) decides when to return. FallbackLocal (the default)
// decides from the in-memory twin (package fallback) with this process's
// share of every limit (WithReplicas) and the last quota and block seen
// from Redis; FailOpen admits; FailClosed refuses with ErrUnavailable.
// Every such decision is marked Degraded, and WithOnDegraded hears each
// transition once. Across N processes with WithReplicas(N), the fleet stays
// within the limit during an outage. A key whose state Redis loses
// (FLUSHALL, eviction, a failover) restarts full: at most one extra burst.
//
// # Errors
//
// Invalid arguments return errors wrapping smartratelimit.ErrInvalidRequest
// or ErrInvalidLimit before any Redis call. ErrUnavailable reports a Redis
// that could not be reached within the budget (under FailClosed, or from
// Reset), ErrMisconfigured one that refuses the limiter (authentication,
// permissions, scripts; never hidden behind the fallback), and a
// *smartratelimit.KeyError wrapping ErrWrongType a key that holds data the
// limiter did not write. A refused decision is not an error: Decision
// carries RetryAfter; Wait turns it into a *smartratelimit.LimitError.
//
// # Recommended client settings
//
// The limiter works with any client, but a client built for it should set
// ContextTimeoutEnabled, short read and write timeouts (100ms) and
// MaxRetries -1: go-redis retries a script whose reply was lost after it
// ran, which spends the budget twice. With ContextTimeoutEnabled (which
// the clients package storage builds from URLs set), a decision that finds
// nothing else of its node waiting or in flight (a sequential caller, a
// quiet process) is sent from the caller's own goroutine, on the caller's
// context: no handoff to a batch worker and back (a median 16 µs of an
// HTTP client's sequential request on a 2-core machine), and the caller's
// context values (a tracing span) reach the client's hooks. Decisions
// that arrive together still go to the workers and share calls.
package redislimit
