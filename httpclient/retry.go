package httpclient

import (
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// Strategy is how a retry delay grows with the attempt number.
type Strategy int

const (
	// Exponential: BaseDelay × Factor^(attempt−1).
	Exponential Strategy = iota
	// Linear: BaseDelay × attempt.
	Linear
	// Fixed: BaseDelay every time.
	Fixed
)

// String returns "exponential", "linear" or "fixed".
func (s Strategy) String() string {
	switch s {
	case Exponential:
		return "exponential"
	case Linear:
		return "linear"
	case Fixed:
		return "fixed"
	}
	return "unknown"
}

// RetryPolicy says which failed requests the Transport sends again and how
// long it waits first (the source documents' RetryConfig). It is a plain
// value: copy DefaultRetryPolicy and change what you need.
//
// A retry is admitted by the limiter like any request, so it spends from
// the shared budget and waits out any block. The delay before it is the
// larger of the strategy's delay and the server's Retry-After: the
// Transport never retries earlier than the server asked. When that is past
// the maximum wait or the request's deadline, the last response is
// returned instead, never swallowed. A request whose body cannot be
// rebuilt (no GetBody) is never retried, and neither is a non-idempotent
// one (POST, PATCH, without an Idempotency-Key header) unless
// RetryNonIdempotent is set. A server's own word overrides the statuses
// and the idempotency rule: "x-should-retry: false" (or
// Stripe-Should-Retry) means no retry, "true" means a retry within
// MaxRetries, as the OpenAI, Anthropic and Stripe SDKs do.
type RetryPolicy struct {
	// MaxRetries is how many times a request may be sent again; 0 disables
	// retries.
	MaxRetries int
	// Strategy, BaseDelay, Factor and MaxDelay shape the delay before
	// retry number n (from 1): see Strategy. MaxDelay caps it, except that
	// a longer Retry-After from the server is always honoured.
	Strategy  Strategy
	BaseDelay time.Duration
	Factor    float64
	MaxDelay  time.Duration
	// Jitter spreads each delay by up to this fraction of it (0 to 1), so a
	// fleet does not retry in step.
	Jitter float64
	// RetryOn lists the response statuses that are retried.
	RetryOn []int
	// RetryTransportErrors retries requests that got no response at all
	// (connection refused or reset, timeouts), except when the request's
	// own context ended.
	RetryTransportErrors bool
	// RetryNonIdempotent also retries POST and PATCH requests, when their
	// body can be rebuilt (GetBody).
	RetryNonIdempotent bool
}

// DefaultRetryPolicy retries 429, 503, 504 and 529 (Anthropic's
// "overloaded") and transport errors up to 3
// times, 1s, 2s, 4s apart (at most 30s, jittered by 10%), idempotent
// requests only. Retries are off unless WithRetry is given.
var DefaultRetryPolicy = RetryPolicy{
	MaxRetries:           3,
	Strategy:             Exponential,
	BaseDelay:            time.Second,
	Factor:               2,
	MaxDelay:             30 * time.Second,
	Jitter:               0.1,
	RetryOn:              []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout, StatusOverloaded},
	RetryTransportErrors: true,
}

// StatusOverloaded is the status Anthropic answers when its service, not
// the caller's budget, is overloaded: a retry later may succeed.
const StatusOverloaded = 529

// Delay returns the wait before retry number attempt (from 1), jitter
// included, before any Retry-After is considered. Never negative.
func (p RetryPolicy) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	var d float64
	base := float64(max(p.BaseDelay, 0))
	switch p.Strategy {
	case Linear:
		d = base * float64(attempt)
	case Fixed:
		d = base
	default:
		factor := p.Factor
		if factor < 1 {
			factor = 1
		}
		d = base * math.Pow(factor, float64(attempt-1))
	}
	if p.MaxDelay > 0 {
		d = min(d, float64(p.MaxDelay))
	}
	if j := min(max(p.Jitter, 0), 1); j > 0 && d > 0 {
		d += d * j * (2*rand.Float64() - 1)
	}
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(max(d, 0))
}

// retryable reports whether the outcome of one attempt calls for another
// and req may be sent again; serverSays is the response's x-should-retry
// (nil when absent).
func (p RetryPolicy) retryable(req *http.Request, resp *http.Response, err error, serverSays *bool) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	if err != nil {
		return p.RetryTransportErrors && (p.RetryNonIdempotent || idempotent(req))
	}
	if serverSays != nil {
		return *serverSays
	}
	return slices.Contains(p.RetryOn, resp.StatusCode) && (p.RetryNonIdempotent || idempotent(req))
}

// idempotent follows net/http: the safe methods, PUT and DELETE, and any
// request carrying an idempotency key.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}
