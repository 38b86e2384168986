package redislimit

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// MaxPlainKeyLen is the longest key stored under its own name; longer keys
// are hashed (see RedisKey).
const MaxPlainKeyLen = 128

// DefaultKeyPrefix is the prefix of every Redis key the limiter writes.
const DefaultKeyPrefix = "srl:"

// RedisKey returns the Redis key that holds the budget named key:
//
//	<prefix>{<key>}
//
// The braces are a Redis Cluster hash tag, so each script touches one slot.
// A key that could break that scheme or leak into logs is replaced by
// "#" and the first 32 hex digits of its SHA-256: keys containing a brace,
// a control byte, a space or invalid UTF-8, and keys longer than
// MaxPlainKeyLen bytes. Credentials never belong in a key; partition by an
// HMAC of them instead (httpclient does).
func RedisKey(prefix, key string) string {
	if needsHash(key) {
		sum := sha256.Sum256([]byte(key))
		key = "#" + hex.EncodeToString(sum[:16])
	}
	return prefix + "{" + key + "}"
}

func needsHash(key string) bool {
	if len(key) > MaxPlainKeyLen || !utf8.ValidString(key) {
		return true
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c <= ' ', c == 0x7f, c == '{', c == '}', c == '#' && i == 0:
			return true
		}
	}
	return false
}
