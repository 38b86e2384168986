package dialect

import (
	"strings"
	"time"
)

// githubResource names the bucket GitHub counts the request in (core,
// search, graphql…); its quota is read by the X-RateLimit-* family.
func (p *parser) githubResource() {
	if resource := strings.TrimSpace(p.h.Get("X-Ratelimit-Resource")); resource != "" {
		p.res.Scope = resource
		p.res.Dialects = append(p.res.Dialects, FamilyGitHub)
	}
}

// githubPrimary: GitHub answers a spent primary limit with 403 and
// remaining 0, not 429.
func (p *parser) githubPrimary() {
	if p.quota != nil && p.quota.remaining == 0 && p.quota.reset > 0 {
		p.res.Observation.Limited = true
	}
}

// githubSecondary recognises GitHub's secondary limits, which come as 403
// or 429 with the reason only in the body and often without Retry-After.
func (p *parser) githubSecondary(body []byte) {
	text := strings.ToLower(string(body))
	if strings.Contains(text, "secondary rate limit") || strings.Contains(text, "abuse detection") || strings.Contains(text, "abuse-rate-limits") {
		o := &p.res.Observation
		o.Limited = true
		if o.RetryAfter == 0 {
			// GitHub: without Retry-After, wait at least a minute.
			o.RetryAfter = time.Minute
		}
		p.res.Dialects = append(p.res.Dialects, FamilyGitHub)
	}
}
