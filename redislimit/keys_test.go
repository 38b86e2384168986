package redislimit

import (
	"strings"
	"testing"
)

func TestRedisKey(t *testing.T) {
	long := strings.Repeat("a", MaxPlainKeyLen+1)
	tests := []struct {
		key    string
		hashed bool
	}{
		{"api.github.com", false},
		{"api.github.com|3f9a0c", false},
		{strings.Repeat("a", MaxPlainKeyLen), false},
		{long, true},
		{"{evil}", true},
		{"half}", true},
		{"tab\there", true},
		{"with space", true},
		{"nul\x00", true},
		{"del\x7f", true},
		{"bad\xffutf8", true},
		{"#looks-hashed", true},
		{"ünïcode.example", false},
	}
	for _, tc := range tests {
		got := RedisKey("srl:", tc.key)
		tag := got[strings.IndexByte(got, '{')+1 : len(got)-1]
		if hashed := strings.HasPrefix(tag, "#") && len(tag) == 33; hashed != tc.hashed {
			t.Errorf("RedisKey(%q) = %q; hashed %v, want %v", tc.key, got, hashed, tc.hashed)
		}
		if !strings.HasPrefix(got, "srl:{") || strings.Count(got, "{") != 1 || strings.Count(got, "}") != 1 {
			t.Errorf("RedisKey(%q) = %q: not one hash tag after the prefix", tc.key, got)
		}
		if !tc.hashed && tag != tc.key {
			t.Errorf("RedisKey(%q) = %q: a plain key must be kept verbatim", tc.key, got)
		}
	}
	if RedisKey("p:", "{a}") == RedisKey("p:", "{b}") {
		t.Error("distinct hashed keys collide")
	}
}
