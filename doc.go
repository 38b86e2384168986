// Package smartratelimit is the shared vocabulary of a distributed,
// client-side rate limiter for outgoing HTTP calls.
//
// Many processes call the same third-party API and share one budget per API
// (a key). The budget has three dimensions, all decided at once:
//
//   - configured limits (Limit), paced by GCRA; "default" limits apply only
//     while the server has not advertised its own quota;
//   - the server's quota (limit, remaining, reset), learned from response
//     headers through Observation;
//   - a block from Retry-After, or from a 429 without it.
//
// A request is admitted only when every dimension admits it, and then its
// cost is spent from all of them; a refusal spends nothing.
//
// This package holds the types only. The implementations live in
// subpackages: redislimit (the budget in Redis, shared by a fleet),
// fallback (the same state machine in memory), httpclient (a drop-in
// http.Client that learns limits from every response).
//
// All times in shared state are microseconds on the backend's clock (Redis
// TIME): the clocks of the pods never meet.
package smartratelimit
