package dialect

import srl "github.com/smartratelimit/smartratelimit"

// anthropicRounding is how far a token count Anthropic reports may be
// above the true one: remaining token counts are rounded to the nearest
// thousand, so up to 500 fewer may be left.
const anthropicRounding = 500

// anthropic reads Anthropic's requests, tokens (whichever token limit
// binds now), input tokens and output tokens; resets are RFC 3339 times
// at which the bucket is full again.
// anthropicFields are the header names of each unit Anthropic advertises,
// built once: a response is parsed without building any.
var anthropicFields = func() (fields [4]struct{ unit, limit, remaining, reset string }) {
	for i, u := range []struct{ name, unit string }{
		{"Requests", ""},
		{"Tokens", srl.UnitTokens},
		{"Input-Tokens", srl.UnitInputTokens},
		{"Output-Tokens", srl.UnitOutputTokens},
	} {
		prefix := "Anthropic-Ratelimit-" + u.name
		fields[i].unit, fields[i].limit, fields[i].remaining, fields[i].reset = u.unit, prefix+"-Limit", prefix+"-Remaining", prefix+"-Reset"
	}
	return fields
}()

func (p *parser) anthropic() {
	r := reading{family: FamilyAnthropic}
	sent, ok := false, true
	for _, u := range &anthropicFields {
		q, present, okU := p.fields(u.unit, u.limit, u.remaining, u.reset, count, p.rfc3339)
		sent, ok = sent || present, ok && okU
		if !present {
			continue
		}
		if u.unit != "" {
			// Report the least the rounded count can mean, so that the
			// fleet never assumes more tokens than the server has.
			q.remaining = max(q.remaining-anthropicRounding, 0)
		}
		r.quotas = append(r.quotas, q)
	}
	if sent {
		p.offer(r, ok)
	}
}
