package dialect

import (
	"net/http"
	"slices"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Input is what the parser needs from one response.
type Input struct {
	Header     http.Header
	StatusCode int
	// Body is a prefix of the body, given for 403 and 429 responses only
	// (GitHub's secondary limits, Discord's retry_after and Google's
	// RetryInfo live there). Only its first 64 KiB are searched.
	Body []byte
	// Received is the local time the response arrived, used only when the
	// response has no usable Date header: to measure absolute times, and
	// as the Observation's Date.
	Received time.Time
}

// Mapping names custom headers (the source documents' headers_map). Reset
// values are read like X-RateLimit-Reset. The family they make is ranked
// like the others by how complete it is, and wins ties.
type Mapping struct {
	Limit, Remaining, Reset, RetryAfter string
}

// Result is what one response said.
type Result struct {
	// Observation is ready for Backend.Observe; it always passes
	// smartratelimit.Observation.Normalize. Its Date is the response's
	// Date header, or Input.Received without one; Succeeded reports a 2xx
	// or 3xx status, and Bare a response that said nothing about the
	// budget (not Found).
	Observation srl.Observation
	// Found reports that the response carried rate-limit information or
	// was a refusal for rate.
	Found bool
	// Cached reports a response served from a cache; callers ignore it.
	Cached bool
	// Dialects lists the families that contributed, Malformed those that
	// were present but ignored as a whole.
	Dialects, Malformed []string
	// Scope is a sub-bucket the server named (GitHub's
	// x-ratelimit-resource, Discord's X-RateLimit-Bucket), or "".
	Scope string
	// ShouldRetry is the server's word on whether the same request can
	// succeed if sent again (x-should-retry, which the OpenAI and
	// Anthropic SDKs obey over their own rules, or Stripe-Should-Retry);
	// nil when it said nothing. It says nothing about the budget, so it
	// makes no response Found.
	ShouldRetry *bool
}

// Family names, as they appear in Result.Dialects and Result.Malformed.
const (
	FamilyRetryAfter = "retry-after"
	FamilyCustom     = "custom"
	FamilyIETF8      = "ietf-draft08" // drafts -08 to -11
	FamilyIETF7      = "ietf-draft07"
	FamilyIETF6      = "ietf-draft06" // and earlier, and GitLab
	FamilyOpenAI     = "openai"       // and Azure OpenAI, Groq
	FamilyAnthropic  = "anthropic"
	FamilyMistral    = "mistral"
	FamilyGemini     = "gemini"
	FamilyDiscord    = "discord"
	FamilyShopify    = "shopify"
	FamilyXRateLimit = "x-ratelimit" // X-RateLimit-* and X-Rate-Limit-*
	FamilyGitHub     = "github"

	// FamilyShouldRetry is only ever Malformed: it carries no budget.
	FamilyShouldRetry = "should-retry"
)

// quota is one family's reading of one unit of the server's budget. The
// has* flags say which values the server sent, which ranks the families.
type quota struct {
	unit                             string // "" for requests
	limit, remaining                 int
	reset, window                    time.Duration
	slack                            time.Duration // added to reset for the resolution it was written with
	hasLimit, hasRemaining, hasReset bool
}

// completeness ranks what a quota says: limit, remaining and reset beat
// remaining and reset, which beat anything less.
func (q quota) completeness() int {
	switch {
	case q.hasLimit && q.hasRemaining && q.hasReset:
		return 3
	case q.hasRemaining && q.hasReset:
		return 2
	}
	return 1
}

// reading is what one family that read cleanly said.
type reading struct {
	family string
	quotas []quota
	// scope is the sub-bucket the family counts in (Discord's bucket),
	// and scopeFamily the family that named it when another one did
	// (GitHub's resource beside X-RateLimit-*).
	scope, scopeFamily string
}

// parser holds one response while its families are read.
type parser struct {
	h        http.Header
	status   int
	date     time.Time // the server's clock when it answered
	res      Result
	readings []reading // in order of specificity: ties go to the first
	requests quota     // the request quota chosen
}

// Parse reads one response. It never fails: a family whose values cannot
// be trusted is ignored as a whole and listed in Malformed.
func Parse(in Input, m *Mapping) Result {
	p := &parser{h: in.Header, status: in.StatusCode, date: in.Received}
	if p.h == nil {
		p.h = http.Header{}
	}
	if v, ok := p.get("Date"); ok {
		if d, ok := httpDate(trimOWS(v)); ok {
			p.date = d
		}
	}
	p.res.Cached = p.cached()

	// Every family present is read; each unit's quota comes from the most
	// complete one, the most specific on a tie.
	p.custom(m)
	p.ietf()
	p.openai()
	p.anthropic()
	p.mistral()
	p.discord()
	p.shopify()
	p.xratelimit()
	p.choose()

	p.retryAfter(m)
	p.refusal(in.Body)
	p.shouldRetry()
	p.res.Found = len(p.res.Dialects) > 0 || p.res.Observation.Limited
	o := &p.res.Observation
	o.Date = p.date.UTC()
	o.Succeeded = p.status >= 200 && p.status < 400
	o.Bare = !p.res.Found
	p.res.Observation = clean(p.res.Observation)
	return p.res
}

// offer records a family that was sent: a reading when ok, else a
// malformed family.
func (p *parser) offer(r reading, ok bool) {
	if !ok {
		p.res.Malformed = appendOnce(p.res.Malformed, r.family)
		return
	}
	p.readings = append(p.readings, r)
}

// choose takes, for each unit, the quota of the most complete family
// (a bare X-Rate-Limit-Limit beside a full RateLimit-* triple teaches
// nothing about the window), and lists the families it took from.
func (p *parser) choose() {
	type pick struct {
		q    quota
		from int
	}
	var picks []pick
	for i, r := range p.readings {
		for _, q := range r.quotas {
			j := slices.IndexFunc(picks, func(pk pick) bool { return pk.q.unit == q.unit })
			switch {
			case j < 0:
				picks = append(picks, pick{q, i})
			case q.completeness() > picks[j].q.completeness():
				picks[j] = pick{q, i}
			}
		}
	}
	o := &p.res.Observation
	for _, pk := range picks {
		r := p.readings[pk.from]
		p.res.Dialects = appendOnce(p.res.Dialects, r.family)
		if r.scope != "" && p.res.Scope == "" {
			p.res.Scope = r.scope
			if r.scopeFamily != "" {
				p.res.Dialects = appendOnce(p.res.Dialects, r.scopeFamily)
			}
		}
		q := p.observed(pk.q)
		if q.Unit == "" {
			p.requests = pk.q
			o.Limit, o.Remaining, o.Reset, o.Window, o.ResetSlack = q.Limit, q.Remaining, q.Reset, q.Window, q.ResetSlack
			continue
		}
		o.Quotas = append(o.Quotas, q)
	}
}

// observed is what a quota tells the backend. A reset means something
// only beside a remaining count (the backend reads a quota with a reset
// and no remaining as spent), except on a 429: a refusal that names only
// when a unit refills says that unit is spent until then.
func (p *parser) observed(q quota) srl.QuotaObservation {
	o := srl.QuotaObservation{Unit: q.unit, Limit: q.limit, Remaining: q.remaining, Window: q.window}
	if q.hasRemaining || p.status == http.StatusTooManyRequests {
		o.Reset, o.ResetSlack = q.reset, q.slack
	}
	return o
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// cached reports a response served from an HTTP cache: a positive Age,
// or an X-From-Cache mark.
func (p *parser) cached() bool {
	if age, ok := p.get("Age"); ok && positiveAge(age) {
		return true
	}
	v, ok := p.get("X-From-Cache")
	v = trimOWS(v)
	return ok && v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// positiveAge reads Age, delta-seconds: digits only, and any length, since
// RFC 9111 reads an overflowing age as 2^31 rather than as garbage.
func positiveAge(v string) bool {
	v = trimOWS(v)
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return false
		}
	}
	return strings.Trim(v, "0") != ""
}

// clean drops whatever Normalize would reject, quota by quota, so that
// the result is always storable; the families already rejected such
// values, this is the net.
func clean(o srl.Observation) srl.Observation {
	top := srl.Observation{Unit: o.Unit, Limit: o.Limit, Remaining: o.Remaining, Reset: o.Reset, Window: o.Window, ResetSlack: o.ResetSlack}
	if _, err := top.Normalize(); err != nil {
		o.Unit, o.Limit, o.Remaining, o.Reset, o.Window, o.ResetSlack = "", 0, 0, 0, 0, 0
	}
	kept := o.Quotas[:0]
	for _, q := range o.Quotas {
		if _, err := (srl.Observation{Quotas: []srl.QuotaObservation{q}}).Normalize(); err == nil {
			kept = append(kept, q)
		}
	}
	if o.Quotas = kept; len(kept) == 0 {
		o.Quotas = nil
	}
	if o.RetryAfter < 0 || o.RetryAfter > srl.MaxHorizon {
		o.RetryAfter = 0
	}
	return o
}

// refusal decides whether the response refused the call for rate, reading
// the body where servers only say it there.
func (p *parser) refusal(body []byte) {
	o := &p.res.Observation
	switch p.status {
	case http.StatusTooManyRequests:
		o.Limited = true
		if o.RetryAfter == 0 {
			p.discordBody(body)
		}
		if o.RetryAfter == 0 {
			p.gemini(body)
		}
	case http.StatusForbidden:
		p.githubPrimary()
	}
	if p.status == http.StatusForbidden || p.status == http.StatusTooManyRequests {
		p.githubSecondary(body)
	}
}
