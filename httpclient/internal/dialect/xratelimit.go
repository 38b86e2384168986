package dialect

// xratelimit reads the generic families: X-RateLimit-* (GitHub, X,
// Reddit, Jira…), X-Rate-Limit-* (Okta, X, tollbooth), and RateLimit-*
// (IETF drafts up to -06, GitLab), with the reset's form detected from its
// value. Each spelling is its own reading: tollbooth sends a bare
// X-Rate-Limit-Limit beside a full RateLimit-* triple.
func (p *parser) xratelimit() {
	for _, f := range []struct{ family, prefix string }{
		{FamilyXRateLimit, "X-Ratelimit-"},
		{FamilyXRateLimit, "X-Rate-Limit-"},
		{FamilyIETF6, "Ratelimit-"},
	} {
		q, present, ok := p.fields("", f.prefix+"Limit", f.prefix+"Remaining", f.prefix+"Reset", listCount, p.reset)
		if !present {
			continue
		}
		if ok && !q.hasLimit && q.hasRemaining {
			// Reddit sends used and remaining, not the limit.
			v, okU := p.get(f.prefix + "Used")
			if ok = okU; ok && v != "" {
				if used, okN := countFloor(v); okN {
					q.limit, q.hasLimit = used+q.remaining, true
				}
			}
		}
		if f.family == FamilyIETF6 {
			field, _, okF := p.list("Ratelimit-Policy")
			if ok = ok && okF; ok {
				q.window = policyWindow(field)
			}
		}
		r := reading{family: f.family, quotas: []quota{q}}
		var okS bool
		r.scope, r.scopeFamily, okS = p.githubResource()
		p.offer(r, ok && okS)
	}
}
