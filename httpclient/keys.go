package httpclient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// KeyFunc names the shared budget a request spends from. It must not
// return credentials: keys travel to Redis and into metrics.
type KeyFunc func(*http.Request) string

// HostKey is the default KeyFunc: the request's host in canonical form
// (see CanonicalHost): one budget per API.
func HostKey(req *http.Request) string {
	if req.URL == nil {
		return ""
	}
	return CanonicalHost(req.URL.Scheme, req.URL.Host)
}

// CanonicalHost is the one form in which the client compares hosts (keys,
// WithHostLimits, Status): lower case, without a trailing dot, and without
// the scheme's default port (":443" for https, ":80" for http), so that
// "API.example.com", "api.example.com." and "api.example.com:443" name one
// budget. scheme may be empty (a bare host): both default ports are then
// dropped.
func CanonicalHost(scheme, host string) string {
	host = strings.ToLower(strings.TrimSpace(host))
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		name, port = host[:i], host[i+1:]
	}
	switch strings.ToLower(scheme) {
	case "https", "wss":
		if port == "443" {
			port = ""
		}
	case "http", "ws":
		if port == "80" {
			port = ""
		}
	case "":
		if port == "443" || port == "80" {
			port = ""
		}
	}
	name = strings.TrimSuffix(name, ".")
	if port == "" {
		return name
	}
	return name + ":" + port
}

// KeyByCredential partitions each host's budget by a credential, for APIs
// that count per token or per account: the key is the host, "|", and the
// first 16 bytes of HMAC-SHA256(secret, the header's value) in hex. The raw
// credential never leaves the process. header is usually "Authorization";
// requests without it share the host's budget. secret should be random and
// the same across the fleet, so every pod computes the same key.
//
// Some providers count per user or per organization across several
// tokens (GitHub, HubSpot); write a KeyFunc that names that scope instead.
func KeyByCredential(header string, secret []byte) KeyFunc {
	key := append([]byte(nil), secret...)
	return func(req *http.Request) string {
		host := HostKey(req)
		v := req.Header.Get(header)
		if v == "" {
			return host
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(v))
		return host + "|" + hex.EncodeToString(mac.Sum(nil)[:16])
	}
}

// scopes remembers which sub-bucket a server reported for requests under a
// path (GitHub's x-ratelimit-resource, Discord's bucket), so that a search
// limit of 30 a minute is never mistaken for the whole API's budget: the
// first response under a path teaches the scope, and later requests under
// that path spend from "<key>|<scope>". Bounded; safe for concurrent use.
type scopes struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxScopes = 4096

// pathClass is the part of a path that selects a bucket: its first segment
// ("/search/issues" → "search").
func pathClass(req *http.Request) string {
	p := strings.TrimPrefix(req.URL.Path, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	return p
}

// key returns the key to spend from for req, given its base key.
func (s *scopes) key(base string, req *http.Request) string {
	s.mu.RLock()
	scope := s.m[base+" "+pathClass(req)]
	s.mu.RUnlock()
	if scope == "" {
		return base
	}
	return base + "|" + scope
}

// learn records the scope a response reported for req and returns the key
// its observation belongs to.
func (s *scopes) learn(base string, req *http.Request, scope string) string {
	if !validScope(scope) {
		return base
	}
	k := base + " " + pathClass(req)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]string)
	}
	if _, known := s.m[k]; known || len(s.m) < maxScopes {
		s.m[k] = scope
	}
	s.mu.Unlock()
	return base + "|" + scope
}

// of returns the scopes learned for base, sorted.
func (s *scopes) of(base string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found []string
	for k, scope := range s.m {
		if strings.HasPrefix(k, base+" ") && !slices.Contains(found, scope) {
			found = append(found, scope)
		}
	}
	slices.Sort(found)
	return found
}

// validScope accepts the short names servers use (GitHub "core",
// "search"; Discord's hex bucket ids), so that a header cannot write an
// arbitrary string into keys.
func validScope(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// models remembers the per-model keys this process spent from, per host
// ("api.openai.com" → "api.openai.com|gpt-4.1"), for Status. Bounded;
// safe for concurrent use.
type models struct {
	mu sync.RWMutex
	m  map[string][]string
}

const maxModelsPerHost = 64

// note records that key, a model's key under host, was spent from.
func (s *models) note(host, key string) {
	s.mu.RLock()
	known := slices.Contains(s.m[host], key)
	s.mu.RUnlock()
	if known {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string][]string)
	}
	if list := s.m[host]; !slices.Contains(list, key) && len(list) < maxModelsPerHost && (list != nil || len(s.m) < maxScopes) {
		s.m[host] = append(list, key)
	}
}

// of returns the model keys recorded under host, sorted.
func (s *models) of(host string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(slices.Values(s.m[host]))
}
