package dialect

import (
	"bytes"
	"time"
)

// gemini reads the wait Google's APIs (Gemini among them) give only in a
// 429's body, as google.rpc.RetryInfo's retryDelay; they send no
// rate-limit headers at all.
func (p *parser) gemini(body []byte) {
	v, ok := jsonValue(body, "retryDelay")
	if !ok {
		return
	}
	d, ok := protoDuration(v)
	if !ok {
		p.res.Malformed = appendOnce(p.res.Malformed, FamilyGemini)
		return
	}
	p.res.Observation.RetryAfter = d
	p.res.Dialects = appendOnce(p.res.Dialects, FamilyGemini)
}

// protoDuration reads a protobuf Duration in JSON, a string of seconds
// with an "s" ("26s", "0.5s"), at the start of v. A string cut off by the
// body prefix is not read.
func protoDuration(v []byte) (time.Duration, bool) {
	if len(v) == 0 || v[0] != '"' {
		return 0, false
	}
	end := bytes.IndexByte(v[1:], '"') // v[1:end+1] is the string
	if end < 1 || v[end] != 's' {
		return 0, false
	}
	return seconds(string(v[1:end]))
}
