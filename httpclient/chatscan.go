package httpclient

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// chat is what EstimateLLM reads of a request body.
type chat struct {
	model string
	// text reports a "messages", "input", "prompt" or "system" field;
	// chars counts the characters of their text.
	text  bool
	chars int64
	// max_tokens, max_completion_tokens, max_output_tokens, in that order
	// of preference; and n.
	max    [3]int64
	hasMax [3]bool
	n      int64
	hasN   bool
}

// The fields scanChat reads: those whose text is counted (OpenAI's,
// Azure's, Groq's and Anthropic's), and the output bounds.
var (
	textFields = [...]string{"messages", "input", "prompt", "system"}
	maxFields  = [...]string{"max_tokens", "max_completion_tokens", "max_output_tokens"}
)

// scanChat reads a request body in one pass, without building it: the
// fields encoding/json would fill into a struct of them (names matched
// regardless of case, the last of a repeated one winning, null leaving a
// string as it was), and ok false for whatever encoding/json would reject
// (a malformed document, a model that is not a string, a count that is not
// an integer). A test holds it to encoding/json on random bodies.
func scanChat(body []byte) (c chat, ok bool) {
	s := jsonScanner{b: body}
	s.space()
	if s.null() {
		// encoding/json reads a null document as nothing at all.
		s.space()
		return chat{}, s.i == len(s.b)
	}
	var texts [len(textFields)]int64
	var present [len(textFields)]bool
	ok = s.object(func(key []byte) bool {
		switch {
		case foldIs(key, "model"):
			if s.null() {
				return true
			}
			m, ok := s.stringValue()
			c.model = m
			return ok
		case foldIs(key, "n"):
			if s.null() {
				c.hasN = false
				return true
			}
			c.n, c.hasN = s.integer()
			return c.hasN
		}
		if i := foldIndex(key, maxFields[:]); i >= 0 {
			if s.null() {
				c.hasMax[i] = false
				return true
			}
			c.max[i], c.hasMax[i] = s.integer()
			return c.hasMax[i]
		}
		if i := foldIndex(key, textFields[:]); i >= 0 {
			n, ok := s.walk(1, true)
			texts[i], present[i] = n, true
			return ok
		}
		_, ok := s.walk(1, false)
		return ok
	})
	if s.space(); !ok || s.i != len(s.b) {
		return chat{}, false
	}
	for i := range texts {
		c.chars += texts[i]
		c.text = c.text || present[i]
	}
	return c, true
}

// maxDepth is the nesting encoding/json accepts; textDepth how deep text
// is looked for within a text field.
const (
	maxDepth  = 10000
	textDepth = 8
)

// jsonScanner walks a JSON document in place.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

func (s *jsonScanner) null() bool { return s.literal("null") }

// object reads an object, calling member with each key (decoded) once the
// scanner stands at its value, which member must read.
func (s *jsonScanner) object(member func(key []byte) bool) bool {
	if !s.consume('{') {
		return false
	}
	for first := true; ; first = false {
		s.space()
		if s.consume('}') {
			return true
		}
		if !first {
			if !s.consume(',') {
				return false
			}
			s.space()
		}
		start := s.i + 1
		if _, ok := s.str(); !ok {
			return false
		}
		key := s.b[start : s.i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			// An escaped name is matched as decoded, as encoding/json does.
			var name string
			if json.Unmarshal(s.b[start-1:s.i], &name) != nil {
				return false
			}
			key = []byte(name)
		}
		s.space()
		if !s.consume(':') {
			return false
		}
		s.space()
		if !member(key) {
			return false
		}
	}
}

// str reads a string and counts its characters as decoded: an invalid
// byte, an escape and an escaped surrogate pair count one each.
func (s *jsonScanner) str() (chars int64, ok bool) {
	if !s.consume('"') {
		return 0, false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return chars, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return 0, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return 0, false
				}
				if utf16.IsSurrogate(r) && len(s.b)-s.i >= 2 && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i++
					if r2, ok := s.hex4(); !ok || utf16.DecodeRune(r, r2) == utf8.RuneError {
						s.i = save // not a pair: the next escape stands alone
					}
				}
			default:
				return 0, false
			}
		case c < utf8.RuneSelf:
			s.i++
		default:
			_, size := utf8.DecodeRune(s.b[s.i:])
			s.i += size
		}
		chars++
	}
	return 0, false
}

// hex4 reads the four hex digits of a \u escape, standing at the "u".
func (s *jsonScanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 5 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i+1 : s.i+5] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 5
	return r, true
}

// stringValue reads a string value; one with escapes or invalid UTF-8 is
// decoded by encoding/json (model names have neither).
func (s *jsonScanner) stringValue() (string, bool) {
	start := s.i
	if _, ok := s.str(); !ok {
		return "", false
	}
	raw := s.b[start+1 : s.i-1]
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw), true
	}
	var v string
	if json.Unmarshal(s.b[start:s.i], &v) != nil {
		return "", false
	}
	return v, true
}

// integer reads a number that is an integer within int64, as encoding/json
// requires to fill an int64.
func (s *jsonScanner) integer() (int64, bool) {
	start := s.i
	if !s.number() {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

// number reads a JSON number.
func (s *jsonScanner) number() bool {
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.consume('.') && !s.digits() {
		return false
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *jsonScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// walk reads any value at nesting depth. Counting, it counts the
// characters of its text: a string, the items of a list, and an object's
// "text" and "content" (the last of each), to textDepth. Images, tool
// definitions and the like are not text a provider counts by characters.
func (s *jsonScanner) walk(depth int, counting bool) (int64, bool) {
	if depth > maxDepth || s.i >= len(s.b) {
		return 0, false
	}
	counting = counting && depth <= textDepth+1
	switch s.b[s.i] {
	case '"':
		n, ok := s.str()
		if !counting {
			n = 0
		}
		return n, ok
	case '[':
		s.i++
		total := int64(0)
		for first := true; ; first = false {
			s.space()
			if s.consume(']') {
				return total, true
			}
			if !first {
				if !s.consume(',') {
					return 0, false
				}
				s.space()
			}
			n, ok := s.walk(depth+1, counting)
			if !ok {
				return 0, false
			}
			total += n
		}
	case '{':
		var text, content int64
		ok := s.object(func(key []byte) bool {
			isText := counting && string(key) == "text"
			isContent := counting && string(key) == "content"
			n, ok := s.walk(depth+1, isText || isContent)
			switch {
			case isText:
				text = n
			case isContent:
				content = n
			}
			return ok
		})
		return text + content, ok
	case 't':
		return 0, s.literal("true")
	case 'f':
		return 0, s.literal("false")
	case 'n':
		return 0, s.null()
	}
	return 0, s.number()
}

// foldIs reports key equal to name but for case, as encoding/json matches
// field names (Unicode simple folding: "ſ" is an "s").
func foldIs(key []byte, name string) bool {
	return len(key) <= 3*len(name) && bytes.EqualFold(key, []byte(name))
}

func foldIndex(key []byte, names []string) int {
	for i, n := range names {
		if foldIs(key, n) {
			return i
		}
	}
	return -1
}
