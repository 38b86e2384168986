package dialect

import (
	"bytes"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Bounds on what the parser looks at, so that one huge header costs no
// more than a normal one. A field longer than maxField makes its family
// malformed; real ones are far shorter (a RateLimit-Policy with a few
// policies is about 100 bytes). Bodies are searched up to maxBody.
const (
	maxField = 4 << 10
	maxBody  = 64 << 10
)

// get returns the first line of a field. When it is longer than maxField
// ok is false: the family reading it is malformed, and v must not be read.
func (p *parser) get(name string) (v string, ok bool) {
	v = p.h.Get(name)
	return v, len(v) <= maxField
}

// list returns the lines of a list field joined as one value (RFC 9110
// §5.3), present when there is any; ok is false when the joined value
// would be longer than maxField, which is found without joining.
func (p *parser) list(name string) (v string, present, ok bool) {
	lines := p.h.Values(name)
	n := 0
	for i, line := range lines {
		if n += len(line); i > 0 {
			n += len(", ")
		}
		if n > maxField {
			return "", true, false
		}
	}
	return strings.Join(lines, ", "), len(lines) > 0, true
}

// trimOWS strips the optional whitespace (SP and HTAB) HTTP allows around
// a field value; strings.TrimSpace would also take other Unicode spaces.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// number is an HTTP number: ASCII digits and, where a dialect writes one,
// a fraction. strconv's syntax is wider (signs, exponents, hexadecimal,
// underscores, Inf, NaN); no server means those, so they are malformed.
type number struct {
	whole uint64
	frac  uint64 // the fraction in units of 1e-9, rounded up
	point bool   // written with a fraction
}

// maxDigits bounds the whole part: more than any count, epoch in
// milliseconds or delay needs, and far from overflowing a uint64.
const maxDigits = 16

// parseNumber reads v, a whole HTTP number, with a fraction only when
// fraction is set.
func parseNumber(v string, fraction bool) (number, bool) {
	var n number
	i := 0
	for ; i < len(v) && isDigit(v[i]); i++ {
		if i == maxDigits {
			return number{}, false
		}
		n.whole = n.whole*10 + uint64(v[i]-'0')
	}
	switch {
	case i == 0:
		return number{}, false
	case i == len(v):
		return n, true
	case !fraction || v[i] != '.' || i+1 == len(v):
		return number{}, false
	}
	n.point = true
	scale, inexact := uint64(1e8), false
	for _, c := range []byte(v[i+1:]) {
		if !isDigit(c) {
			return number{}, false
		}
		if scale == 0 {
			inexact = inexact || c != '0'
			continue
		}
		n.frac += uint64(c-'0') * scale
		scale /= 10
	}
	if inexact {
		// Round up: a wait read short is a request sent early.
		if n.frac++; n.frac == 1e9 {
			n.whole, n.frac = n.whole+1, 0
		}
	}
	return n, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// duration is n units long, or not ok beyond MaxHorizon; a fraction of
// the unit is rounded up to the nanosecond.
func (n number) duration(unit time.Duration) (time.Duration, bool) {
	if n.whole > uint64(srl.MaxHorizon/unit) {
		return 0, false
	}
	d := time.Duration(n.whole)*unit + time.Duration((n.frac*uint64(unit)+1e9-1)/1e9)
	if d > srl.MaxHorizon {
		return 0, false
	}
	return d, true
}

// count reads a non-negative integer count.
func count(v string) (int, bool) {
	n, ok := parseNumber(trimOWS(v), false)
	if !ok || n.whole > srl.MaxCount {
		return 0, false
	}
	return int(n.whole), true
}

// countFloor reads a count that may be written with a fraction (Reddit's
// "98.0", tollbooth's "10.00"), floored.
func countFloor(v string) (int, bool) {
	n, ok := parseNumber(trimOWS(v), true)
	if !ok || n.whole > srl.MaxCount {
		return 0, false
	}
	return int(n.whole), true
}

// listCount reads the first element of a list ("100, 100;window=60", the
// IETF drafts up to -03 and Whoop) as a countFloor.
func listCount(v string) (int, bool) {
	if i := strings.IndexAny(v, ",;"); i >= 0 {
		v = v[:i]
	}
	return countFloor(v)
}

// seconds reads a non-negative number of seconds, decimals allowed.
func seconds(v string) (time.Duration, bool) {
	n, ok := parseNumber(trimOWS(v), true)
	if !ok {
		return 0, false
	}
	return n.duration(time.Second)
}

// goDuration reads the duration strings OpenAI and Groq send ("6m0s",
// "12ms", "2m59.56s"), the syntax of time.ParseDuration.
func goDuration(v string) (time.Duration, bool) {
	if v == "" || !isDigit(v[0]) {
		// ParseDuration would also take a sign and ".5s".
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > srl.MaxHorizon {
		return 0, false
	}
	return d, true
}

// until measures an absolute server time against the response's Date.
// The time was written with a resolution (a whole second for an epoch in
// seconds or an HTTP date, a minute for Jira): the server's reset may lie
// up to that much after it, and the Date, in whole seconds, up to a
// second before the server's now. A fleet that rolled over at the written
// second would send its first request into the old, spent window, so the
// resolution is added and reported as the slack. A time already passed
// even then means "already reset" (0), never a long wait; one more than a
// day in the past or beyond MaxHorizon is not believed.
func (p *parser) until(t time.Time, resolution time.Duration) (reset, slack time.Duration, ok bool) {
	d := t.Sub(p.date)
	if d < -24*time.Hour || d > srl.MaxHorizon-resolution {
		return 0, 0, false
	}
	if d += resolution; d <= 0 {
		return 0, 0, true
	}
	return d, min(resolution, d), true
}

// The resolutions absolute times are written with: sub-second forms
// (epoch milliseconds, fractions) are measured against a Date that is
// itself early, so they need none.
const (
	wholeSecond               = time.Second
	wholeMinute               = time.Minute
	subSecond   time.Duration = 0
)

// relative reads a delay from now (seconds with decimals) as a reset,
// which no resolution makes late.
func relative(v string) (reset, slack time.Duration, ok bool) {
	d, ok := seconds(v)
	return d, 0, ok
}

// rfc3339 reads an absolute time written as RFC 3339 (Anthropic, Rachio),
// whose resolution is a second unless it has a fraction.
func (p *parser) rfc3339(v string) (reset, slack time.Duration, ok bool) {
	v = trimOWS(v)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, 0, false
	}
	resolution := wholeSecond
	if strings.IndexByte(v, '.') >= 0 {
		resolution = subSecond
	}
	return p.until(t, resolution)
}

// jiraMinute is Jira's reset: RFC 3339 to the minute.
const jiraMinute = "2006-01-02T15:04Z07:00"

// reset reads a reset value whose form is not fixed by the dialect:
// epoch milliseconds (≥ 1e12), epoch seconds (≥ 1e9, decimals allowed),
// seconds from now, a Go duration, RFC 3339 (to the second or, Jira, the
// minute), or an HTTP date; absolute forms are measured against Date.
func (p *parser) reset(v string) (reset, slack time.Duration, ok bool) {
	v = trimOWS(v)
	if n, ok := parseNumber(v, true); ok {
		switch {
		case n.whole >= 1e12:
			return p.until(time.UnixMilli(int64(n.whole)).Add(time.Duration((n.frac+1e6-1)/1e6)), subSecond)
		case n.whole >= 1e9 && n.point:
			return p.until(time.Unix(int64(n.whole), int64(n.frac)), subSecond)
		case n.whole >= 1e9:
			return p.until(time.Unix(int64(n.whole), 0), wholeSecond)
		}
		d, ok := n.duration(time.Second)
		return d, 0, ok
	}
	if d, ok := goDuration(v); ok {
		return d, 0, true
	}
	if reset, slack, ok := p.rfc3339(v); ok {
		return reset, slack, true
	}
	if t, err := time.Parse(jiraMinute, v); err == nil {
		return p.until(t, wholeMinute)
	}
	if t, ok := httpDate(v); ok {
		return p.until(t, wholeSecond)
	}
	return 0, 0, false
}

// Layouts of the dates servers send without their zone: IMF-fixdate and
// the RFC 1123/5322 forms around it (a day of one digit, no day name),
// RFC 850, and JavaScript's Date.toString (lemlist). Asctime, which has
// no zone, is tried on its own.
var (
	zonedLayouts = []string{"Mon, 2 Jan 2006 15:04:05", "2 Jan 2006 15:04:05", "Monday, 02-Jan-06 15:04:05", "Mon Jan 2 2006 15:04:05"}
	asctime      = "Mon Jan _2 15:04:05 2006"
)

// maxDateLen bounds a date with JavaScript's comment, "(Central European
// Standard Time)", with room to spare.
const maxDateLen = 128

// httpDate reads the dates servers send in Date, Retry-After and resets:
// IMF-fixdate, RFC 850 and asctime (which RFC 9110 requires), and the
// forms libraries write in practice: Go's time.RFC1123 with "UTC", a
// numeric zone (time.RFC1123Z), JavaScript's "GMT+0100 (…)". The zone
// must be unambiguous: GMT, UTC, UT, Z or a numeric offset. time.Parse
// would read any other name (EST, CET, PST) as a zone with no offset, up
// to hours off, so those are not dates.
func httpDate(v string) (time.Time, bool) {
	if len(v) > maxDateLen {
		return time.Time{}, false
	}
	if t, err := time.Parse(asctime, v); err == nil && t.Nanosecond() == 0 {
		return t, true
	}
	if i := strings.IndexByte(v, '('); i >= 0 {
		if !strings.HasSuffix(v, ")") {
			return time.Time{}, false
		}
		v = trimOWS(v[:i])
	}
	i := strings.LastIndexByte(v, ' ')
	if i < 0 {
		return time.Time{}, false
	}
	offset, ok := zoneOffset(v[i+1:])
	if !ok {
		return time.Time{}, false
	}
	for _, layout := range zonedLayouts {
		// Without a zone in the layout the time is read as UTC; the
		// fraction time.Parse tolerates after the seconds is refused.
		if t, err := time.Parse(layout, v[:i]); err == nil && t.Nanosecond() == 0 {
			return t.Add(-offset), true
		}
	}
	return time.Time{}, false
}

// zoneOffset reads the zones that say how far they are from UTC: the
// names of UTC itself, and offsets such as +0100, -07:00 or GMT+0100.
func zoneOffset(z string) (time.Duration, bool) {
	switch z {
	case "GMT", "UTC", "UT", "Z":
		return 0, true
	}
	for _, name := range []string{"GMT", "UTC"} {
		if len(z) > len(name) && z[:len(name)] == name {
			z = z[len(name):]
			break
		}
	}
	if len(z) == 6 && z[3] == ':' {
		z = z[:3] + z[4:]
	}
	if len(z) != 5 || z[0] != '+' && z[0] != '-' {
		return 0, false
	}
	hh, okH := parseNumber(z[1:3], false)
	mm, okM := parseNumber(z[3:5], false)
	if !okH || !okM || hh.whole > 23 || mm.whole > 59 {
		return 0, false
	}
	d := time.Duration(hh.whole)*time.Hour + time.Duration(mm.whole)*time.Minute
	if z[0] == '-' {
		d = -d
	}
	return d, true
}

// fields reads one unit's limit, remaining and reset fields with the
// given readers; a name no response carries (noField) stands for a value
// the dialect does not have. present reports whether any was sent, ok
// that every one sent was read: none too long, no negative, no garbage,
// no reset beyond MaxHorizon.
func (p *parser) fields(unit, limitName, remainingName, resetName string, readCount func(string) (int, bool), readReset func(string) (reset, slack time.Duration, ok bool)) (q quota, present, ok bool) {
	q.unit = unit
	lv, okL := p.get(limitName)
	rv, okR := p.get(remainingName)
	tv, okT := p.get(resetName)
	ok = okL && okR && okT
	if ok && lv != "" {
		q.limit, ok = readCount(lv)
		q.hasLimit = true
	}
	if ok && rv != "" {
		q.remaining, ok = readCount(rv)
		q.hasRemaining = true
	}
	if ok && tv != "" {
		q.reset, q.slack, ok = readReset(tv)
		q.hasReset = true
	}
	return q, lv != "" || rv != "" || tv != "", ok
}

// jsonSeconds finds "key": <number> in a (possibly truncated) JSON body
// without decoding it whole. A number cut off by the truncation, or
// written with an exponent, is not read.
func jsonSeconds(body []byte, key string) (time.Duration, bool) {
	s, ok := jsonValue(body, key)
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(s) && (isDigit(s[end]) || s[end] == '.') {
		end++
	}
	if end == len(s) || !strings.ContainsRune(" \t\r\n,}]", rune(s[end])) {
		return 0, false
	}
	return seconds(string(s[:end]))
}

// jsonValue returns what follows "key": in body, searched up to maxBody.
func jsonValue(body []byte, key string) ([]byte, bool) {
	if len(body) > maxBody {
		body = body[:maxBody]
	}
	for {
		i := bytes.Index(body, []byte(key))
		if i < 0 {
			return nil, false
		}
		before, after := body[:i], body[i+len(key):]
		body = after
		if len(before) == 0 || before[len(before)-1] != '"' || len(after) == 0 || after[0] != '"' {
			continue
		}
		after = bytes.TrimLeft(after[1:], " \t\r\n")
		if len(after) == 0 || after[0] != ':' {
			continue
		}
		return bytes.TrimLeft(after[1:], " \t\r\n"), true
	}
}

// containsFold reports whether body, up to maxBody, contains needle (in
// lower case) in any case, without a lower-cased copy of the body.
func containsFold(body []byte, needle string) bool {
	if len(body) > maxBody {
		body = body[:maxBody]
	}
	for i := 0; i+len(needle) <= len(body); i++ {
		j := 0
		for j < len(needle) && lower(body[i+j]) == needle[j] {
			j++
		}
		if j == len(needle) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
