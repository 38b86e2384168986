package dialect

// anthropic reads the request dimension; resets are RFC 3339 times.
func (p *parser) anthropic() {
	q, present, ok := p.fields("", "Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset", count, p.rfc3339)
	if present {
		p.offer(reading{family: FamilyAnthropic, quotas: []quota{q}}, ok)
	}
}
