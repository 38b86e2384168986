// Package httpclient is a drop-in rate-limited http.Client: every request
// spends from a shared budget before it is sent, and every response
// teaches the budget what the server said about its limits.
//
// Per request, the Transport:
//
//  1. names the budget (KeyFunc; by default the host) and tells what the
//     request costs (CostFunc; by default EstimateLLM, which prices an
//     LLM API's request in tokens and adds its model to the key);
//  2. waits for it, with the host's limits: fixed limits always, default
//     limits only while the server has not advertised its quota; a wait
//     longer than WithMaxWait, or past the request's deadline, fails at
//     once with a *smartratelimit.LimitError, and WithRaiseOnLimit fails
//     instead of waiting at all;
//  3. sends it through the wrapped transport;
//  4. parses the response's rate-limit headers — X-RateLimit-* and
//     X-Rate-Limit-*, the IETF RateLimit drafts (≤06, 07, 08+), Retry-After
//     and retry-after-ms, OpenAI/Groq durations, Anthropic dates, GitHub
//     (primary and secondary limits), Discord, Shopify, and a HeaderMap of
//     your own — measuring every time against the response's own Date
//     header, so no clock skew between server, pods or Redis matters;
//  5. tells the backend, so that every process sharing it learns the quota,
//     and a Retry-After or a 429 blocks all of them until it passes;
//  6. under WithRetry, sends the request again when that is safe.
//
// # Costs: charge before, correct after
//
// A request costs one request, and, when its CostFunc says so, some
// amount of other units: tokens, input tokens and output tokens for an LLM
// API. A server may advertise a quota in each unit it meters
// (x-ratelimit-*-tokens, anthropic-ratelimit-input-tokens-*); a request is
// admitted only when every quota of its key has room for its cost in that
// unit, and it spends from all of them at once, atomically (one Lua call),
// or from none.
//
// The accounting rule: what a request is estimated to cost is charged at
// admission and counts as in flight until its response is observed. The
// response's remaining counts are the truth: when they arrive, the request
// stops counting as in flight and what the server says is left replaces the
// estimate, minus what other requests still have in flight and what may
// have been spent after the server produced this response (requests settled
// meanwhile, unless the response provably counts them). So an over-estimate
// (a max_tokens the model never produced) returns to the fleet with the
// response, an under-estimate is caught up, and estimates in flight never
// let the fleet spend more than the server's quota. A server's own counts are always
// trusted over the estimate: OpenAI charges max_tokens at arrival and says
// so in its remaining tokens; Anthropic counts output as it is produced,
// and its remaining counts say what was used. A request that never reached
// the server (a failed lookup, connection or TLS handshake) gives its
// charge back; one that failed later (a reset, a timeout) may have been
// counted, and stays in flight for a minute.
//
// For an API that limits each model on its own, the model becomes part of
// the key ("api.openai.com|gpt-4.1"): one model's spent budget never holds
// another's requests. Status lists each model's budget in Status.Scopes.
//
// Without WithRedis the budgets live in this process only (package
// fallback). With WithRedis(rdb) they are shared through Redis (package
// redislimit), and survive Redis outages by the limiter's failure policy.
//
// # One round trip per request
//
// With a backend across the network (Redis, an SQLite file), deciding a
// request is a round trip, and so is storing what its response said. A
// response that cannot change what the next decision must know (a
// success, for a key whose quota the fleet already knew, whose every
// advertised quota has more than an eighth of its limit left, with no
// probe or streak waiting on it) is returned at once and stored in the
// background, at most MaxDeferredObserves at a time: its request stays
// in flight meanwhile, so decisions made before it lands count it. A
// deferred response waits 5 ms for others of its key, and all of them,
// up to 32, are stored in one call (redislimit merges them in one script
// run), so storing responses neither costs a round trip each nor queues
// in front of the next decision. Refusals, blocks, probes and nearly
// spent quotas are stored before the response is returned, together with
// the deferred responses of their key that came before them and after
// those already on their way (waited for up to half a second), so the
// next decision anywhere in the fleet sees them and no older, roomier
// response undoes them. Status sends what was deferred
// before it and waits for it, Close for all of it; WithInlineObserve
// stores everything first.
//
// # Leases
//
// WithLease(n) takes the decision's round trip off most requests too. When
// a key's last decision saw its server quota (in requests, its only one)
// with more than an eighth of its limit left and over a second to its
// reset, the next request asks the backend for up to n requests at once
// (at most a 64th of what is left, and at least 2): one decision, atomic
// like any other, that spends them all from the shared budget (they count
// in flight for the whole fleet from then on). That request and the next
// of the key are admitted from memory until the lease is used up or
// LeaseFor (100 ms) has passed; what is left then goes back to the fleet with
// the key's deferred responses, as it does on Close, when a response of
// the key must be stored at once (a refusal, a block, a nearly spent
// quota) or a request gets no response. So a lease never lets the fleet
// spend past the server's quota, and a response this process gets is seen
// by its next request as without a lease; what it gives up is that a
// refusal or block another process saw reaches this one at its next
// decision by the backend: after at most n−1 requests or LeaseFor. Keys
// with configured limits, costs in other units (LLM tokens) or a small
// quota are never leased: their decisions stay per request.
//
// The Transport keeps the net/http RoundTripper contract: the request is
// not modified, its body is closed on every path (a rejected request's
// too), a response obtained is returned with a nil error, retries rebuild
// the body with GetBody (a request without it is not retried), and every
// wait ends when the request's context does. Responses served from a cache
// (Age, X-From-Cache) are not learned from. A malformed header family is
// ignored as a whole: garbage never becomes a negative or endless wait.
package httpclient
