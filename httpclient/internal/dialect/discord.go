package dialect

import (
	"strings"
)

// discord prefers X-RateLimit-Reset-After (seconds with decimals, immune
// to clock skew) and names the route's bucket.
func (p *parser) discord(*Mapping) (string, *quota, bool) {
	if p.h.Get("X-Ratelimit-Reset-After") == "" {
		return FamilyDiscord, nil, false
	}
	q, _ := p.triple("X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset-After", count, seconds)
	if q != nil {
		p.res.Scope = strings.TrimSpace(p.h.Get("X-Ratelimit-Bucket"))
	}
	return FamilyDiscord, q, true
}

// discordBody reads the precise wait Discord puts in a 429's body (the
// header is rounded up to whole seconds).
func (p *parser) discordBody(body []byte) {
	if d, ok := jsonSeconds(body, "retry_after"); ok {
		p.res.Observation.RetryAfter = d
		p.res.Dialects = append(p.res.Dialects, FamilyDiscord)
	}
}
