package dialect

import (
	"strings"
	"time"
)

// anthropic reads the request dimension; resets are RFC 3339 times.
func (p *parser) anthropic(*Mapping) (string, *quota, bool) {
	q, present := p.triple("Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset", count,
		func(v string) (time.Duration, bool) {
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
			if err != nil {
				return 0, false
			}
			return p.until(t)
		})
	return FamilyAnthropic, q, present
}
