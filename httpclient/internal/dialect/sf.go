package dialect

import (
	"strconv"
	"strings"
)

// A small reader for RFC 9651 structured fields: enough for the IETF
// RateLimit drafts (lists and dictionaries of items with parameters). It is
// lenient where servers are: a policy name may be a Token as well as a
// String, and keys are compared in lower case.
//
// It is bounded where real fields are small: a list or dictionary of more
// than maxMembers members, an inner list of more, or an item with more
// than maxParams parameters does not parse, so that what one field costs
// does not grow with what a server (or an attacker) sends.

const (
	maxMembers = 16
	maxParams  = 16
)

type sfKind byte

const (
	sfString sfKind = iota + 1
	sfToken
	sfNumber
	sfBool
	sfBytes
	sfInner
)

type sfValue struct {
	kind    sfKind
	str     string
	num     float64
	integer bool
}

type sfParam struct {
	key string
	val sfValue
}

type sfItem struct {
	name   string // dictionary member name; empty in lists
	val    sfValue
	params []sfParam
}

func (it sfItem) param(key string) (sfValue, bool) {
	for _, p := range it.params {
		if p.key == key {
			return p.val, true
		}
	}
	return sfValue{}, false
}

type sfReader struct {
	s string
	i int
}

func (r *sfReader) done() bool { return r.i >= len(r.s) }

func (r *sfReader) peek() byte {
	if r.done() {
		return 0
	}
	return r.s[r.i]
}

func (r *sfReader) skipSpace() {
	for !r.done() && (r.s[r.i] == ' ' || r.s[r.i] == '\t') {
		r.i++
	}
}

// parseList reads an SF List; dict reads members as name[=item].
func parseSF(s string, dict bool) ([]sfItem, bool) {
	r := &sfReader{s: strings.TrimSpace(s)}
	var items []sfItem
	for !r.done() {
		var it sfItem
		if dict {
			key, ok := r.key()
			if !ok {
				return nil, false
			}
			it.name = key
			if r.peek() == '=' {
				r.i++
				if it.val, ok = r.member(); !ok {
					return nil, false
				}
			} else {
				it.val = sfValue{kind: sfBool, num: 1}
			}
		} else {
			var ok bool
			if it.val, ok = r.member(); !ok {
				return nil, false
			}
		}
		params, ok := r.params()
		if !ok || len(items) == maxMembers {
			return nil, false
		}
		it.params = params
		items = append(items, it)
		r.skipSpace()
		if r.done() {
			break
		}
		if r.peek() != ',' {
			return nil, false
		}
		r.i++
		r.skipSpace()
		if r.done() {
			return nil, false // a trailing comma
		}
	}
	return items, len(items) > 0
}

// member reads a bare item or an inner list (whose content is skipped).
func (r *sfReader) member() (sfValue, bool) {
	if r.peek() != '(' {
		return r.bareItem()
	}
	r.i++
	for n := 0; ; n++ {
		r.skipSpace()
		if r.done() {
			return sfValue{}, false
		}
		if r.peek() == ')' {
			r.i++
			return sfValue{kind: sfInner}, true
		}
		if n == maxMembers {
			return sfValue{}, false
		}
		if _, ok := r.bareItem(); !ok {
			return sfValue{}, false
		}
		if _, ok := r.params(); !ok {
			return sfValue{}, false
		}
	}
}

func (r *sfReader) params() ([]sfParam, bool) {
	var ps []sfParam
	for {
		r.skipSpace()
		if r.peek() != ';' {
			return ps, true
		}
		r.i++
		r.skipSpace()
		key, ok := r.key()
		if !ok || len(ps) == maxParams {
			return nil, false
		}
		val := sfValue{kind: sfBool, num: 1}
		if r.peek() == '=' {
			r.i++
			if val, ok = r.bareItem(); !ok {
				return nil, false
			}
		}
		ps = append(ps, sfParam{key: key, val: val})
	}
}

func (r *sfReader) key() (string, bool) {
	start := r.i
	for !r.done() {
		c := r.s[r.i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*' {
			r.i++
			continue
		}
		break
	}
	if r.i == start {
		return "", false
	}
	return strings.ToLower(r.s[start:r.i]), true
}

func (r *sfReader) bareItem() (sfValue, bool) {
	c := r.peek()
	switch {
	case c == '"':
		return r.str()
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	case c == '?':
		if r.i+1 < len(r.s) && (r.s[r.i+1] == '0' || r.s[r.i+1] == '1') {
			v := sfValue{kind: sfBool, num: float64(r.s[r.i+1] - '0')}
			r.i += 2
			return v, true
		}
	case c == ':':
		end := strings.IndexByte(r.s[r.i+1:], ':')
		if end < 0 {
			return sfValue{}, false
		}
		v := sfValue{kind: sfBytes, str: r.s[r.i+1 : r.i+1+end]}
		r.i += end + 2
		return v, true
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		start := r.i
		for !r.done() && isTokenChar(r.s[r.i]) {
			r.i++
		}
		return sfValue{kind: sfToken, str: r.s[start:r.i]}, true
	}
	return sfValue{}, false
}

func isTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),;<=>?@[\]{}`, rune(c))
}

func (r *sfReader) str() (sfValue, bool) {
	var b strings.Builder
	for r.i++; !r.done(); r.i++ {
		c := r.s[r.i]
		switch {
		case c == '\\':
			r.i++
			if r.done() || (r.s[r.i] != '"' && r.s[r.i] != '\\') {
				return sfValue{}, false
			}
			b.WriteByte(r.s[r.i])
		case c == '"':
			r.i++
			return sfValue{kind: sfString, str: b.String()}, true
		case c < ' ' || c >= 0x7f:
			return sfValue{}, false
		default:
			b.WriteByte(c)
		}
	}
	return sfValue{}, false
}

func (r *sfReader) number() (sfValue, bool) {
	start := r.i
	if r.peek() == '-' {
		r.i++
	}
	dot := false
	for !r.done() {
		c := r.s[r.i]
		if c == '.' && !dot {
			dot = true
		} else if c < '0' || c > '9' {
			break
		}
		r.i++
	}
	text := r.s[start:r.i]
	// RFC 9651 bounds integers to 15 digits and decimals to 12+3.
	if len(text) > 16 || text == "-" || strings.HasSuffix(text, ".") {
		return sfValue{}, false
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return sfValue{}, false
	}
	return sfValue{kind: sfNumber, num: f, integer: !dot}, true
}
