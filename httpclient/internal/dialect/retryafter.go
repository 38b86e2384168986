package dialect

import (
	"net/http"
	"time"
)

// retryAfter reads Retry-After (seconds, decimals allowed, or an HTTP date
// measured against Date) and retry-after-ms, which wins when both are
// sent. Only refusals count: a Retry-After on a success (Confluence sends
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
	ok, present := true, false
	if v := p.h.Get("Retry-After-Ms"); v != "" {
		present = true
		var n number
		if n, ok = parseNumber(trimOWS(v), true); ok {
			d, ok = n.duration(time.Millisecond)
		}
	} else if v := p.h.Get(name); v != "" {
		present = true
		if d, ok = seconds(v); !ok {
			var t time.Time
			if t, ok = httpDate(trimOWS(v)); ok {
				d, ok = p.until(t)
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
