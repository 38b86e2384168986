package dialect

import (
	"math"
	"net/http"
	"sort"
	"strconv"
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
	if d, err := http.ParseTime(p.h.Get("Date")); err == nil {
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

// cached reports a response served from an HTTP cache.
func cached(h http.Header) bool {
	if age, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Age")), 64); err == nil && age > 0 {
		return true
	}
	v := strings.TrimSpace(h.Get("X-From-Cache"))
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
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

// --- value readers -------------------------------------------------------

// count reads a non-negative count; decimals (Reddit's "98.0") are
// floored. The first element of a list ("100, 100;window=60") counts.
func count(v string) (int, bool) {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, ",;"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > srl.MaxCount {
		return 0, false
	}
	return int(f), true
}

// seconds reads a non-negative number of seconds, decimals allowed.
func seconds(v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > srl.MaxHorizon.Seconds() {
		return 0, false
	}
	return time.Duration(math.Ceil(f * float64(time.Second))), true
}

// goDuration matches the duration strings OpenAI and Groq send ("6m0s",
// "12ms", "2m59.56s"), the syntax of time.ParseDuration.
func goDuration(v string) (time.Duration, bool) {
	if v == "" || strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > srl.MaxHorizon {
		return 0, false
	}
	return d, true
}

// until measures an absolute server time against the response's Date: a
// time already passed means "already reset" (0), never a long wait; one
// more than a day in the past or beyond MaxHorizon is not believed.
func (p *parser) until(t time.Time) (time.Duration, bool) {
	d := t.Sub(p.date)
	switch {
	case d < -24*time.Hour || d > srl.MaxHorizon:
		return 0, false
	case d < 0:
		return 0, true
	}
	return d, true
}

// Layouts of absolute resets with letters in them: RFC 3339 with seconds,
// and Jira's minute precision.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}

// reset reads a reset value whose form is not fixed by the dialect:
// epoch milliseconds (≥ 1e12), epoch seconds (≥ 1e9, decimals allowed),
// seconds from now, a Go duration, RFC 3339, or an HTTP date; absolute
// forms are measured against Date.
func (p *parser) reset(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0) || f < 0:
			return 0, false
		case f >= 1e12:
			return p.until(time.UnixMilli(int64(f)))
		case f >= 1e9:
			sec, frac := math.Modf(f)
			return p.until(time.Unix(int64(sec), int64(frac*1e9)))
		}
		return seconds(v)
	}
	if d, ok := goDuration(v); ok {
		return d, true
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return p.until(t)
		}
	}
	if t, err := http.ParseTime(v); err == nil {
		return p.until(t)
	}
	return 0, false
}

// triple reads limit, remaining and reset headers with the given reset
// reader. present reports whether any of them was sent; q is nil when one
// that was sent cannot be read (a negative, garbage, a reset beyond
// MaxHorizon). A quota without a reset is kept but never stored (see
// smartratelimit.Observation).
func (p *parser) triple(limitName, remainingName, resetName string, readReset func(string) (time.Duration, bool)) (q *quota, present bool) {
	lv, rv, tv := p.h.Get(limitName), p.h.Get(remainingName), p.h.Get(resetName)
	if lv == "" && rv == "" && tv == "" {
		return nil, false
	}
	q = &quota{}
	ok := true
	if lv != "" {
		q.limit, ok = count(lv)
	}
	if ok && rv != "" {
		q.remaining, ok = count(rv)
	}
	if ok && tv != "" {
		q.reset, ok = readReset(tv)
	}
	if !ok {
		return nil, true
	}
	return q, true
}

// --- families ------------------------------------------------------------

func (p *parser) custom(m *Mapping) (string, *quota, bool) {
	if m == nil || (m.Limit == "" && m.Remaining == "" && m.Reset == "") {
		return FamilyCustom, nil, false
	}
	q, present := p.triple(orNone(m.Limit), orNone(m.Remaining), orNone(m.Reset), p.reset)
	return FamilyCustom, q, present
}

// orNone maps an unset name to one no response carries.
func orNone(name string) string {
	if name == "" {
		return "X-Smartratelimit-Unset"
	}
	return name
}

// ietf reads the RateLimit and RateLimit-Policy fields of the IETF drafts
// -07 (a dictionary) and -08 onward (lists of named policies), under
// their standard and Atlassian "Beta-" names.
func (p *parser) ietf(*Mapping) (string, *quota, bool) {
	for _, prefix := range []string{"", "Beta-"} {
		values := p.h.Values(prefix + "Ratelimit")
		if len(values) == 0 {
			continue
		}
		field := strings.Join(values, ", ")
		policies := strings.Join(p.h.Values(prefix+"Ratelimit-Policy"), ", ")
		if items, ok := parseSF(field, false); ok && hasParam(items, "r") {
			return FamilyIETF8, p.ietf8(items, policies), true
		}
		if items, ok := parseSF(field, true); ok {
			return FamilyIETF7, p.ietf7(items, policies), true
		}
		return FamilyIETF8, nil, true
	}
	return FamilyIETF8, nil, false
}

func hasParam(items []sfItem, key string) bool {
	for _, it := range items {
		if _, ok := it.param(key); ok {
			return true
		}
	}
	return false
}

// policyName accepts a String or, leniently, a Token.
func policyName(v sfValue) string {
	if v.kind == sfString || v.kind == sfToken {
		return v.str
	}
	return ""
}

// ietf8 picks the binding policy: the smallest available quota r, the
// longest effective window t on a tie.
func (p *parser) ietf8(items []sfItem, policyField string) *quota {
	var policies []sfItem
	if policyField != "" {
		var ok bool
		if policies, ok = parseSF(policyField, false); !ok {
			policies = nil
		}
	}
	var best *quota
	var bestName string
	for _, it := range items {
		r, ok := it.param("r")
		if !ok {
			continue
		}
		rem, okR := intValue(r)
		if !okR {
			return nil
		}
		q := &quota{remaining: rem}
		if t, ok := it.param("t"); ok {
			n, okT := intValue(t)
			if !okT || time.Duration(n)*time.Second > srl.MaxHorizon {
				return nil
			}
			q.reset = time.Duration(n) * time.Second
		}
		if best == nil || q.remaining < best.remaining || q.remaining == best.remaining && q.reset > best.reset {
			best, bestName = q, policyName(it.val)
		}
	}
	if best == nil {
		return nil
	}
	for _, pol := range policies {
		if policyName(pol.val) != bestName {
			continue
		}
		if q, ok := pol.param("q"); ok {
			if n, ok := intValue(q); ok {
				best.limit = n
			}
		}
		if w, ok := pol.param("w"); ok {
			if n, ok := intValue(w); ok && time.Duration(n)*time.Second <= srl.MaxHorizon {
				best.window = time.Duration(n) * time.Second
			}
		}
	}
	if best.reset == 0 {
		// Without t the window bounds the wait for more quota.
		best.reset = best.window
	}
	return best
}

// ietf7 reads "limit=100, remaining=50, reset=5" and a "100;w=10" policy.
func (p *parser) ietf7(items []sfItem, policyField string) *quota {
	q := &quota{}
	seen := 0
	for _, it := range items {
		n, ok := intValue(it.val)
		switch it.name {
		case "limit":
			q.limit = n
		case "remaining":
			q.remaining = n
		case "reset":
			q.reset = time.Duration(n) * time.Second
		default:
			continue
		}
		if !ok {
			return nil
		}
		seen++
	}
	if seen == 0 || q.reset > srl.MaxHorizon {
		return nil
	}
	if pols, ok := parseSF(policyField, false); ok {
		if w, ok := pols[0].param("w"); ok {
			if n, ok := intValue(w); ok && time.Duration(n)*time.Second <= srl.MaxHorizon {
				q.window = time.Duration(n) * time.Second
			}
		}
	}
	return q
}

func intValue(v sfValue) (int, bool) {
	if v.kind != sfNumber || !v.integer || v.num < 0 || v.num > srl.MaxCount {
		return 0, false
	}
	return int(v.num), true
}

// openai reads the request dimension of OpenAI, Azure OpenAI and Groq
// (token counts are not request counts); resets are Go durations.
func (p *parser) openai(*Mapping) (string, *quota, bool) {
	q, present := p.triple("X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests",
		func(v string) (time.Duration, bool) {
			if d, ok := goDuration(strings.TrimSpace(v)); ok {
				return d, true
			}
			return seconds(v)
		})
	return FamilyOpenAI, q, present
}

// anthropic reads the request dimension; resets are RFC 3339 times.
func (p *parser) anthropic(*Mapping) (string, *quota, bool) {
	q, present := p.triple("Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset",
		func(v string) (time.Duration, bool) {
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
			if err != nil {
				return 0, false
			}
			return p.until(t)
		})
	return FamilyAnthropic, q, present
}

// discord prefers X-RateLimit-Reset-After (seconds with decimals, immune
// to clock skew) and names the route's bucket.
func (p *parser) discord(*Mapping) (string, *quota, bool) {
	if p.h.Get("X-Ratelimit-Reset-After") == "" {
		return FamilyDiscord, nil, false
	}
	q, _ := p.triple("X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset-After", seconds)
	if q != nil {
		p.res.Scope = strings.TrimSpace(p.h.Get("X-Ratelimit-Bucket"))
	}
	return FamilyDiscord, q, true
}

// shopify reads "used/capacity" leaky-bucket headers
// (X-Shopify-Shop-Api-Call-Limit and the like), which leak 2 calls a
// second on the lowest plan: the bucket is empty again after used/2 s.
func (p *parser) shopify(*Mapping) (string, *quota, bool) {
	names := make([]string, 0, 1)
	for name := range p.h {
		if strings.HasSuffix(name, "-Api-Call-Limit") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return FamilyShopify, nil, false
	}
	sort.Strings(names)
	used, capacity, ok := strings.Cut(strings.TrimSpace(p.h.Get(names[0])), "/")
	u, okU := count(used)
	c, okC := count(capacity)
	if !ok || !okU || !okC || c == 0 || u > c {
		return FamilyShopify, nil, true
	}
	const leakPerSecond = 2
	return FamilyShopify, &quota{
		limit:     c,
		remaining: c - u,
		reset:     time.Duration((u+leakPerSecond-1)/leakPerSecond) * time.Second,
		window:    time.Duration((c+leakPerSecond-1)/leakPerSecond) * time.Second,
	}, true
}

// xratelimit reads the generic families: X-RateLimit-* (GitHub, X,
// Reddit, Jira…), X-Rate-Limit-* (Okta, X), and RateLimit-* (IETF drafts
// up to -06, GitLab), with the reset's form detected from its value.
func (p *parser) xratelimit(*Mapping) (string, *quota, bool) {
	for _, f := range []struct{ family, prefix string }{
		{FamilyXRateLimit, "X-Ratelimit-"},
		{FamilyXRateLimit, "X-Rate-Limit-"},
		{FamilyIETF6, "Ratelimit-"},
	} {
		q, present := p.triple(f.prefix+"Limit", f.prefix+"Remaining", f.prefix+"Reset", p.reset)
		if !present {
			continue
		}
		if q == nil {
			return f.family, nil, true
		}
		if q.limit == 0 {
			// Reddit sends used and remaining, not the limit.
			if used, ok := count(p.h.Get(f.prefix + "Used")); ok {
				q.limit = used + q.remaining
			}
		}
		if f.family == FamilyIETF6 {
			if pols, ok := parseSF(p.h.Get("Ratelimit-Policy"), false); ok {
				if w, ok := pols[0].param("w"); ok {
					if n, ok := intValue(w); ok && time.Duration(n)*time.Second <= srl.MaxHorizon {
						q.window = time.Duration(n) * time.Second
					}
				}
			}
		}
		if resource := strings.TrimSpace(p.h.Get("X-Ratelimit-Resource")); resource != "" {
			p.res.Scope = resource
			p.res.Dialects = append(p.res.Dialects, FamilyGitHub)
		}
		return f.family, q, true
	}
	return FamilyXRateLimit, nil, false
}

// retryAfter reads Retry-After (seconds, decimals allowed, or an HTTP date
// measured against Date) and retry-after-ms, which wins when both are
// sent. Only refusals count: a Retry-After on a success (Confluence sends
// 0) or a redirect is not a block.
func (p *parser) retryAfter(status int, m *Mapping) {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable && status != http.StatusForbidden {
		return
	}
	name := "Retry-After"
	if m != nil && m.RetryAfter != "" && p.h.Get(m.RetryAfter) != "" {
		name = m.RetryAfter
	}
	var d time.Duration
	ok, present := true, false
	if v := p.h.Get("Retry-After-Ms"); v != "" {
		present = true
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		ok = err == nil && f >= 0 && f <= float64(srl.MaxHorizon/time.Millisecond)
		d = time.Duration(math.Ceil(f * float64(time.Millisecond)))
	} else if v := p.h.Get(name); v != "" {
		present = true
		if d, ok = seconds(v); !ok {
			if t, err := http.ParseTime(strings.TrimSpace(v)); err == nil {
				d, ok = p.until(t)
			}
		}
	}
	switch {
	case !present:
	case !ok:
		p.res.Malformed = append(p.res.Malformed, FamilyRetryAfter)
	default:
		p.res.Dialects = append(p.res.Dialects, FamilyRetryAfter)
		p.res.Observation.RetryAfter = d
	}
}

// refusal decides whether the response refused the call for rate, reading
// the body where servers only say it there.
func (p *parser) refusal(status int, body []byte) {
	o := &p.res.Observation
	switch status {
	case http.StatusTooManyRequests:
		o.Limited = true
		if o.RetryAfter == 0 {
			if d, ok := jsonSeconds(body, "retry_after"); ok {
				o.RetryAfter = d
				p.res.Dialects = append(p.res.Dialects, FamilyDiscord)
			}
		}
	case http.StatusForbidden:
		// GitHub answers a spent primary limit with 403 and remaining 0.
		if p.quota != nil && p.quota.remaining == 0 && p.quota.reset > 0 {
			o.Limited = true
		}
	}
	if status == http.StatusForbidden || status == http.StatusTooManyRequests {
		text := strings.ToLower(string(body))
		if strings.Contains(text, "secondary rate limit") || strings.Contains(text, "abuse detection") || strings.Contains(text, "abuse-rate-limits") {
			o.Limited = true
			if o.RetryAfter == 0 {
				// GitHub: without Retry-After, wait at least a minute.
				o.RetryAfter = time.Minute
			}
			p.res.Dialects = append(p.res.Dialects, FamilyGitHub)
		}
	}
}

// jsonSeconds finds "key": <number> in a (possibly truncated) JSON body
// without decoding it whole.
func jsonSeconds(body []byte, key string) (time.Duration, bool) {
	s := string(body)
	i := strings.Index(s, `"`+key+`"`)
	if i < 0 {
		return 0, false
	}
	s = strings.TrimLeft(s[i+len(key)+2:], " \t\r\n")
	if !strings.HasPrefix(s, ":") {
		return 0, false
	}
	s = strings.TrimLeft(s[1:], " \t\r\n")
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	return seconds(s[:end])
}
