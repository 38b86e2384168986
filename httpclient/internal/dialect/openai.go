package dialect

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// openai reads OpenAI, Azure OpenAI and Groq: a request quota and a token
// quota, with resets as Go durations ("6m0s", "1.532s", "20ms"), the time
// until the bucket is full again. Groq's request quota is per day where
// OpenAI's is per minute; the reset says which, so no window is assumed.
// Twins with a suffix (x-ratelimit-limit-tokens_usage_based) are other
// accounting, not read.
//
// Azure differs in three ways: a token reset spelled
// x-rate-limit-reset-tokens, in seconds; responses with remaining counts
// only, which store nothing for lack of a reset; and -1 values, which mean
// nothing, so that unit is skipped rather than the whole response.
func (p *parser) openai() {
	r := reading{family: FamilyOpenAI}
	sent, ok := false, true
	for _, u := range []struct{ suffix, unit string }{{"Requests", ""}, {"Tokens", srl.UnitTokens}} {
		limit, remaining, reset := "X-Ratelimit-Limit-"+u.suffix, "X-Ratelimit-Remaining-"+u.suffix, "X-Ratelimit-Reset-"+u.suffix
		if p.h.Get(reset) == "" {
			reset = "X-Rate-Limit-Reset-" + u.suffix
		}
		if p.meaningless(limit, remaining, reset) {
			sent = true
			continue
		}
		q, present, okU := p.fields(u.unit, limit, remaining, reset, count, openaiReset)
		sent, ok = sent || present, ok && okU
		if present {
			r.quotas = append(r.quotas, q)
		}
	}
	if sent {
		p.offer(r, ok)
	}
}

// meaningless reports Azure's -1 in any of a unit's fields.
func (p *parser) meaningless(names ...string) bool {
	for _, name := range names {
		if trimOWS(p.h.Get(name)) == "-1" {
			return true
		}
	}
	return false
}

// openaiReset reads a Go duration or plain seconds (Azure).
func openaiReset(v string) (reset, slack time.Duration, ok bool) {
	if d, ok := goDuration(trimOWS(v)); ok {
		return d, 0, true
	}
	return relative(v)
}
