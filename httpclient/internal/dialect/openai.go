package dialect

import "time"

// openai reads the request dimension of OpenAI, Azure OpenAI and Groq
// (token counts are not request counts); resets are Go durations.
func (p *parser) openai() {
	q, present, ok := p.fields("", "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests", count, openaiReset)
	if present {
		p.offer(reading{family: FamilyOpenAI, quotas: []quota{q}}, ok)
	}
}

// openaiReset reads a Go duration ("6m0s", "20ms") or plain seconds.
func openaiReset(v string) (reset, slack time.Duration, ok bool) {
	if d, ok := goDuration(trimOWS(v)); ok {
		return d, 0, true
	}
	return relative(v)
}
