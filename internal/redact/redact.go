package redact

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Mask replaces every secret the package removes.
const Mask = "xxxxx"

// secretWords are the fragments that make a query parameter's value a
// secret. Matching is by substring on the lower-cased name: a false
// positive only hides a harmless value, a false negative prints a
// credential.
var secretWords = []string{"pass", "pwd", "token", "key", "secret", "auth", "credential", "sig"}

// SecretParam reports whether the value of a query parameter named name is
// a secret under the package's rule.
func SecretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// URL returns raw with its secrets replaced by Mask: the password of the
// user information and the values of secret-looking query parameters (see
// SecretParam). A URL without secrets comes back unchanged, and so does a
// string that is not a URL at all (it has no "://"), which keeps file
// names and host:port pairs readable.
func URL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return unparsable(raw)
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
			changed = true
		}
	}
	if q, ok := maskQuery(u.RawQuery); ok {
		u.RawQuery = q
		changed = true
	}
	if !changed {
		// u.String() would re-encode what the user typed; it is safe as is.
		return raw
	}
	return u.String()
}

// maskQuery masks the secret values of a raw query, keeping the order and
// the spelling of everything else. It reports whether anything was masked.
func maskQuery(raw string) (string, bool) {
	if raw == "" {
		return raw, false
	}
	parts := strings.Split(raw, "&")
	changed := false
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if hasValue && SecretParam(name) {
			parts[i] = p[:strings.IndexByte(p, '=')+1] + Mask
			changed = true
		}
	}
	return strings.Join(parts, "&"), changed
}

// unparsable redacts a string that has "://" but does not parse. Without a
// parse no part can be trusted to be what it looks like, so everything
// that could hold a credential goes: the user information up to the last
// '@' (a broken URL may hold '/', '?' or '#' unescaped in its password)
// and the whole query.
func unparsable(raw string) string {
	i := strings.Index(raw, "://") + len("://")
	scheme, rest := raw[:i], raw[i:]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = Mask + rest[at:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q+1] + Mask
	}
	return scheme + rest
}

// URLs in free text. A quoted one (url.Error and %q quote them) runs to its
// closing quote, spaces included, because a broken URL may hold a space in
// its password; a bare one runs to white space or a quote.
var (
	quotedURL = `"[A-Za-z][A-Za-z0-9+.-]*://(?:[^"\\]|\\.)*"`
	bareURL   = `[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]*`
	urlInText = regexp.MustCompile(quotedURL + `|` + bareURL)
)

// Text returns s with every URL in it redacted by URL.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, func(u string) string {
		if u[0] == '"' {
			if raw, err := strconv.Unquote(u); err == nil {
				return strconv.Quote(URL(raw))
			}
			return `"` + unparsable(u[1:len(u)-1]) + `"`
		}
		// Prose often ends a URL with punctuation that is not part of it;
		// keep it out of the parse so it survives as written.
		trimmed := strings.TrimRight(u, ".,;:)]")
		return URL(trimmed) + u[len(trimmed):]
	})
}

// Error returns err with its message redacted by Text, or nil for nil. It
// is how an error that quotes a URL, such as a *url.Error, is made safe to
// print. The result wraps err, so errors.Is and errors.As still see the
// chain; the errors inside keep their own messages, so print only the
// result's.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := Text(msg)
	if clean == msg {
		return err
	}
	return &redacted{msg: clean, err: err}
}

// redacted is an error whose message has been cleaned of secrets.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
