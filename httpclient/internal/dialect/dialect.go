package dialect

import (
	"net/http"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Input is what the parser needs from one response.
type Input struct {
	Header     http.Header
	StatusCode int
	// Body is a prefix of the body, given for 403 and 429 responses only
	// (GitHub's secondary limits and Discord's retry_after live there).
	Body []byte
	// Received is the local time the response arrived, used only when the
	// response has no usable Date header.
	Received time.Time
}

// Mapping names custom headers (the source documents' headers_map). Reset
// values are read like X-RateLimit-Reset.
type Mapping struct {
	Limit, Remaining, Reset, RetryAfter string
}

// Result is what one response said.
type Result struct {
	// Observation is ready for Backend.Observe; it always passes
	// smartratelimit.Observation.Normalize.
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
}

// Family names, as they appear in Result.Dialects and Result.Malformed.
const (
	FamilyRetryAfter = "retry-after"
	FamilyCustom     = "custom"
	FamilyIETF8      = "ietf-draft08"
	FamilyIETF7      = "ietf-draft07"
	FamilyIETF6      = "ietf-draft06"
	FamilyOpenAI     = "openai"
	FamilyAnthropic  = "anthropic"
	FamilyDiscord    = "discord"
	FamilyShopify    = "shopify"
	FamilyXRateLimit = "x-ratelimit"
	FamilyGitHub     = "github"
)

// quota is one family's reading of the server's budget.
type quota struct {
	limit, remaining int
	reset, window    time.Duration
}

// parser holds one response while its families are read.
type parser struct {
	h     http.Header
	date  time.Time // the server's clock when it answered
	res   Result
	quota *quota
}

// Parse reads one response. It never fails: a family whose values cannot
// be trusted is ignored as a whole and listed in Malformed.
func Parse(in Input, m *Mapping) Result {
	p := &parser{h: in.Header, date: in.Received}
	if p.h == nil {
		p.h = http.Header{}
	}
	if d, ok := httpDate(trimOWS(p.h.Get("Date"))); ok {
		p.date = d
	}
	p.res.Cached = cached(p.h)

	// The quota: the most specific family that reads cleanly wins.
	for _, f := range []func(*Mapping) (string, *quota, bool){
		p.custom, p.ietf, p.openai, p.anthropic, p.discord, p.shopify, p.xratelimit,
	} {
		family, q, present := f(m)
		if !present {
			continue
		}
		if q == nil {
			p.res.Malformed = append(p.res.Malformed, family)
			continue
		}
		p.res.Dialects = append(p.res.Dialects, family)
		p.quota = q
		break
	}
	if p.quota != nil {
		o := &p.res.Observation
		o.Limit, o.Remaining, o.Reset, o.Window = p.quota.limit, p.quota.remaining, p.quota.reset, p.quota.window
	}
	p.retryAfter(in.StatusCode, m)
	p.refusal(in.StatusCode, in.Body)
	p.res.Found = len(p.res.Dialects) > 0 || p.res.Observation.Limited
	p.res.Observation = clean(p.res.Observation)
	return p.res
}

// cached reports a response served from an HTTP cache: a positive Age,
// or an X-From-Cache mark.
func cached(h http.Header) bool {
	if positiveAge(h.Get("Age")) {
		return true
	}
	v := trimOWS(h.Get("X-From-Cache"))
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
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

// clean drops whatever Normalize would reject, so the result is always
// storable; the families already rejected such values, this is the net.
func clean(o srl.Observation) srl.Observation {
	if o.Reset < 0 || o.Reset > srl.MaxHorizon || o.Window < 0 || o.Window > srl.MaxHorizon ||
		o.Limit < 0 || o.Remaining < 0 || o.Limit > srl.MaxCount || o.Remaining > srl.MaxCount {
		o.Limit, o.Remaining, o.Reset, o.Window = 0, 0, 0, 0
	}
	if o.RetryAfter < 0 || o.RetryAfter > srl.MaxHorizon {
		o.RetryAfter = 0
	}
	return o
}

// refusal decides whether the response refused the call for rate, reading
// the body where servers only say it there.
func (p *parser) refusal(status int, body []byte) {
	o := &p.res.Observation
	switch status {
	case http.StatusTooManyRequests:
		o.Limited = true
		if o.RetryAfter == 0 {
			p.discordBody(body)
		}
	case http.StatusForbidden:
		p.githubPrimary()
	}
	if status == http.StatusForbidden || status == http.StatusTooManyRequests {
		p.githubSecondary(body)
	}
}
