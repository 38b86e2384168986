package dialect

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// xratelimit reads the generic families: X-RateLimit-* (GitHub, X,
// Reddit, Jira…), X-Rate-Limit-* (Okta, X), and RateLimit-* (IETF drafts
// up to -06, GitLab), with the reset's form detected from its value.
func (p *parser) xratelimit(*Mapping) (string, *quota, bool) {
	for _, f := range []struct{ family, prefix string }{
		{FamilyXRateLimit, "X-Ratelimit-"},
		{FamilyXRateLimit, "X-Rate-Limit-"},
		{FamilyIETF6, "Ratelimit-"},
	} {
		q, present := p.triple(f.prefix+"Limit", f.prefix+"Remaining", f.prefix+"Reset", listCount, p.reset)
		if !present {
			continue
		}
		if q == nil {
			return f.family, nil, true
		}
		if q.limit == 0 {
			// Reddit sends used and remaining, not the limit.
			if used, ok := countFloor(p.h.Get(f.prefix + "Used")); ok {
				q.limit = used + q.remaining
			}
		}
		if f.family == FamilyIETF6 {
			if pols, ok := parseSF(p.h.Get("Ratelimit-Policy"), false); ok {
				if w, ok := pols[0].param("w"); ok {
					if n, ok := intValue(w); ok && time.Duration(n)*time.Second <= srl.MaxHorizon {
						q.window = time.Duration(n) * time.Second
					}
				}
			}
		}
		p.githubResource()
		return f.family, q, true
	}
	return FamilyXRateLimit, nil, false
}
