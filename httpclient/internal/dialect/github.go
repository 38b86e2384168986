package dialect

import "time"

// githubResource names the bucket GitHub counts the request in (core,
// search, graphql…), whose quota the X-RateLimit-* family reads.
func (p *parser) githubResource() (scope, family string, ok bool) {
	resource, ok := p.get("X-Ratelimit-Resource")
	if !ok || trimOWS(resource) == "" {
		return "", "", ok
	}
	return trimOWS(resource), FamilyGitHub, true
}

// githubPrimary: GitHub answers a spent primary limit with 403 and
// remaining 0, not 429.
func (p *parser) githubPrimary() {
	if q := p.requests; q.hasRemaining && q.remaining == 0 && q.reset > 0 {
		p.res.Observation.Limited = true
	}
}

// githubSecondary recognises GitHub's secondary limits, which come as 403
// or 429 with the reason only in the body and often without Retry-After.
func (p *parser) githubSecondary(body []byte) {
	if containsFold(body, "secondary rate limit") || containsFold(body, "abuse detection") || containsFold(body, "abuse-rate-limits") {
		o := &p.res.Observation
		o.Limited = true
		if o.RetryAfter == 0 {
			// GitHub: without Retry-After, wait at least a minute.
			o.RetryAfter = time.Minute
		}
		p.res.Dialects = appendOnce(p.res.Dialects, FamilyGitHub)
	}
}
