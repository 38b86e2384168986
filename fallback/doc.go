// Package fallback is the in-memory twin of the Redis limiter: the same
// state machine (GCRA limits all-or-nothing with reservations, the server
// quota merged min-within-window, blocks from Retry-After and bare 429s),
// the same integer microsecond arithmetic, in process memory.
//
// It serves two purposes. On its own it is the in-process limiter:
// httpclient.New() without Redis uses it, and it is a drop-in for callers
// who run one process. Inside redislimit it takes over when Redis is
// unreachable, serving each process's share of every limit and starting
// from the last quota and block the process saw from Redis (Seed).
//
// A Store is sharded by key over 64 locks and allocates nothing on the
// allowed path of an existing key. Memory is bounded: a key's state is
// forgotten one second after its horizon, as its Redis TTL would expire,
// and past WithMaxKeys (default 100,000) storing a new key evicts one close
// to expiry. The clock is injectable (WithClock); by default it is immune
// to wall-clock steps.
//
// The conformance suite in package backendtest holds the Store and the
// Redis scripts to identical replies, and a differential fuzz test
// (internal/scripts) compares them on random operation sequences.
package fallback
