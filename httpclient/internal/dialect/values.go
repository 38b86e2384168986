package dialect

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

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
