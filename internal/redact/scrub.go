package redact

import (
	"io"
	"net/url"
	"sort"
	"strings"
)

// MinSecretLen is the shortest secret a Writer scrubs from free text.
// Shorter ones would mangle ordinary words ("a", "db") in every line; URL
// and Text still remove them wherever they sit in a URL.
const MinSecretLen = 4

// Secrets returns the secrets that raw, a URL, holds under the package's
// rule: its password and the values of its secret-looking query
// parameters, each as written and decoded. It is what a Writer is told to
// scrub, so that a secret reaches no output even inside a message that
// quotes it in some form no URL rule recognises (a library echoing a
// value, a URL broken across words).
func Secrets(raw string) []string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return nil
	}
	rest := raw[i+len("://"):]
	var out []string
	seen := map[string]bool{"": true}
	keep := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add := func(s string) {
		keep(s)
		if dec, err := url.PathUnescape(s); err == nil {
			keep(dec)
		}
		if dec, err := url.QueryUnescape(s); err == nil {
			keep(dec)
		}
	}
	// The user information runs to the last '@' before the path, or, for a
	// string url.Parse refuses, to the last '@' anywhere (as unparsable
	// cuts it).
	_, err := url.Parse(raw)
	parsed := err == nil
	authority := rest
	if parsed {
		if j := strings.IndexAny(authority, "/?#"); j >= 0 {
			authority = authority[:j]
		}
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo := authority[:at]
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			add(pw)
		} else if !parsed {
			add(userinfo) // no telling what part of a broken one is secret
		}
		rest = rest[at+1:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		query := rest[q+1:]
		if f := strings.IndexByte(query, '#'); f >= 0 {
			query = query[:f]
		}
		for _, p := range strings.Split(query, "&") {
			name, value, ok := strings.Cut(p, "=")
			if dec, err := url.QueryUnescape(name); err == nil {
				name = dec
			}
			if ok && SecretParam(name) {
				add(value)
			}
		}
	}
	return out
}

// Writer replaces known secrets with Mask in everything written through
// it. It is the last line of defence behind URL, Text and Error: what they
// miss, it still removes, provided it was told the secret.
type Writer struct {
	w       io.Writer
	secrets []string
}

// NewWriter returns a Writer that scrubs secrets (those of at least
// MinSecretLen bytes) from what it writes to w. Each Write is scrubbed on
// its own, so a secret split across two writes passes; the command writes
// every message, line and JSON document in one call.
func NewWriter(w io.Writer, secrets ...string) *Writer {
	var kept []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) >= MinSecretLen && !seen[s] {
			seen[s] = true
			kept = append(kept, s)
		}
	}
	// Longest first, so a secret that contains another goes whole.
	sort.Slice(kept, func(i, j int) bool { return len(kept[i]) > len(kept[j]) })
	return &Writer{w: w, secrets: kept}
}

// Write writes p to the underlying writer with every secret masked. It
// returns len(p) on success, whatever the masked length, as io.Writer
// callers expect.
func (w *Writer) Write(p []byte) (int, error) {
	if len(w.secrets) == 0 {
		return w.w.Write(p)
	}
	s := string(p)
	for _, secret := range w.secrets {
		s = strings.ReplaceAll(s, secret, Mask)
	}
	if _, err := io.WriteString(w.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}
