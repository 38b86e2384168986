package dialect

// discord prefers X-RateLimit-Reset-After (seconds with decimals, immune
// to clock skew) and names the route's bucket.
func (p *parser) discord() {
	if p.h.Get("X-Ratelimit-Reset-After") == "" {
		return
	}
	q, _, ok := p.fields("", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset-After", count, relative)
	bucket, okB := p.get("X-Ratelimit-Bucket")
	if okB {
		bucket = trimOWS(bucket)
	}
	p.offer(reading{family: FamilyDiscord, quotas: []quota{q}, scope: bucket}, ok && okB)
}

// discordBody reads the precise wait Discord puts in a 429's body (the
// header is rounded up to whole seconds).
func (p *parser) discordBody(body []byte) {
	if d, ok := jsonSeconds(body, "retry_after"); ok {
		p.res.Observation.RetryAfter = d
		p.res.Dialects = appendOnce(p.res.Dialects, FamilyDiscord)
	}
}
