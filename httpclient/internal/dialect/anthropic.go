package dialect

import "time"

// anthropic reads the request dimension; resets are RFC 3339 times.
func (p *parser) anthropic() {
	q, present, ok := p.fields("", "Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset", count, p.rfc3339)
	if present {
		p.offer(reading{family: FamilyAnthropic, quotas: []quota{q}}, ok)
	}
}

// rfc3339 reads an absolute reset written as RFC 3339.
func (p *parser) rfc3339(v string) (time.Duration, bool) {
	t, err := time.Parse(time.RFC3339Nano, trimOWS(v))
	if err != nil {
		return 0, false
	}
	return p.until(t)
}
