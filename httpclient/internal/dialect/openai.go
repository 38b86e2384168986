package dialect

import (
	"strings"
	"time"
)

// openai reads the request dimension of OpenAI, Azure OpenAI and Groq
// (token counts are not request counts); resets are Go durations.
func (p *parser) openai(*Mapping) (string, *quota, bool) {
	q, present := p.triple("X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests", count,
		func(v string) (time.Duration, bool) {
			if d, ok := goDuration(strings.TrimSpace(v)); ok {
				return d, true
			}
			return seconds(v)
		})
	return FamilyOpenAI, q, present
}
