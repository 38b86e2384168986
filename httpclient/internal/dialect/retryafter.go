package dialect

import (
	"net/http"
	"strings"
	"time"
)

// retryAfter reads Retry-After, or the Mapping's name for it (seconds,
// decimals allowed, or an HTTP date measured against Date), and
// retry-after-ms, which wins when both are sent. Only refusals count: a Retry-After on a success (Confluence sends
// 0) or a redirect is not a block.
func (p *parser) retryAfter(m *Mapping) {
	if p.status != http.StatusTooManyRequests && p.status != http.StatusServiceUnavailable && p.status != http.StatusForbidden {
		return
	}
	name := "Retry-After"
	if m != nil && m.RetryAfter != "" && p.h.Get(m.RetryAfter) != "" {
		name = m.RetryAfter
	}
	var d time.Duration
	ms, okMs := p.get("Retry-After-Ms")
	v, okV := p.get(name)
	present, ok := ms != "" || v != "", okMs && okV
	switch {
	case !ok:
	case ms != "":
		var n number
		if n, ok = parseNumber(trimOWS(ms), true); ok {
			d, ok = n.duration(time.Millisecond)
		}
	case v != "":
		if d, ok = seconds(v); !ok {
			var t time.Time
			if t, ok = httpDate(trimOWS(v)); ok {
				// An HTTP date is as early as a reset in the same form.
				d, _, ok = p.until(t, wholeSecond)
			}
		}
	}
	switch {
	case !present:
	case !ok:
		p.res.Malformed = appendOnce(p.res.Malformed, FamilyRetryAfter)
	default:
		p.res.Dialects = appendOnce(p.res.Dialects, FamilyRetryAfter)
		p.res.Observation.RetryAfter = d
	}
}

// shouldRetry reads x-should-retry, or Stripe's name for the same.
func (p *parser) shouldRetry() {
	for _, name := range []string{"X-Should-Retry", "Stripe-Should-Retry"} {
		v, ok := p.get(name)
		if v == "" {
			continue
		}
		switch v = trimOWS(v); {
		case ok && strings.EqualFold(v, "true"):
			yes := true
			p.res.ShouldRetry = &yes
		case ok && strings.EqualFold(v, "false"):
			no := false
			p.res.ShouldRetry = &no
		default:
			p.res.Malformed = appendOnce(p.res.Malformed, FamilyShouldRetry)
		}
		return
	}
}
