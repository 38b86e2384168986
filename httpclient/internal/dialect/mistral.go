package dialect

import (
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// mistral reads the token budget of Mistral's gateway, Kong's rate
// limiting by size: x-ratelimitbysize-{limit,remaining}-{minute,month},
// and ratelimitbysize-{limit,remaining,reset} for the window Kong picks,
// the one with the least remaining. That is the quota taken: it binds by
// definition, and it is the minute's while the month's budget lasts.
// When its counts are the minute's it is known to be a one-minute window.
// The month's own headers are not read: they carry no reset, and a
// month is beyond what the backends keep.
func (p *parser) mistral() {
	q, presentK, okK := p.fields(srl.UnitTokens, "Ratelimitbysize-Limit", "Ratelimitbysize-Remaining", "Ratelimitbysize-Reset", count, relative)
	m, presentM, okM := p.fields(srl.UnitTokens, "X-Ratelimitbysize-Limit-Minute", "X-Ratelimitbysize-Remaining-Minute", noField, count, relative)
	switch {
	case !presentK && !presentM:
		return
	case !okK || !okM:
		p.offer(reading{family: FamilyMistral}, false)
		return
	case !presentK:
		q = m
	}
	if presentM && q.hasRemaining && m.hasRemaining && q.remaining == m.remaining && (!q.hasLimit || !m.hasLimit || q.limit == m.limit) {
		q.window = time.Minute
	}
	p.offer(reading{family: FamilyMistral, quotas: []quota{q}}, true)
}
