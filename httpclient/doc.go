// Package httpclient is a drop-in rate-limited http.Client: every request
// spends from a shared budget before it is sent, and every response
// teaches the budget what the server said about its limits.
//
// Per request, the Transport:
//
//  1. names the budget (KeyFunc; by default the host);
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
// Without WithRedis the budgets live in this process only (package
// fallback). With WithRedis(rdb) they are shared through Redis (package
// redislimit), and survive Redis outages by the limiter's failure policy.
//
// The Transport keeps the net/http RoundTripper contract: the request is
// not modified, its body is closed on every path (a rejected request's
// too), a response obtained is returned with a nil error, retries rebuild
// the body with GetBody (a request without it is not retried), and every
// wait ends when the request's context does. Responses served from a cache
// (Age, X-From-Cache) are not learned from. A malformed header family is
// ignored as a whole: garbage never becomes a negative or endless wait.
package httpclient
