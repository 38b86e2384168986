package cli

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/smartratelimit/smartratelimit/redislimit"
)

// How keys are named on the command line.
//
// The limiter stores the budget named key at redislimit.RedisKey(prefix,
// key): <prefix>{<key>}, or <prefix>{#<32 hex digits>} for a key too long
// or too odd to store as is (the hash cannot be undone). "keys" can only
// print what is between the braces, the stored name; "status" and "reset"
// must find the state from whatever "keys" printed, and from the key as
// the code names it too.
//
// A stored name is printed as is when every rune of it is printable and
// unambiguous; otherwise with Go escapes (\u202e, \x1b, \x20 for a space,
// \\ for a backslash, \" for a quote; "" for the empty name), in ASCII, so that a hostile key cannot turn the
// terminal's text around (U+202E), hide itself (U+200B), or send escape
// sequences. Every printed form reads back to one stored name: only
// escaped forms hold a backslash.

// shownKey is how the command prints a stored name (or any key).
func shownKey(s string) string {
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, unsafeInKey) < 0 {
		return s
	}
	q := strconv.QuoteToASCII(s)
	if s == "" {
		return q // `""`, which readKeys reads back as the empty name
	}
	return strings.ReplaceAll(q[1:len(q)-1], " ", `\x20`)
}

// quotedKey is shownKey in double quotes, for messages.
func quotedKey(s string) string {
	if s == "" {
		return `""`
	}
	return `"` + shownKey(s) + `"`
}

// unsafeInKey reports a rune that a key is not printed with as is: not
// printable (controls, bidi and other format characters, separators
// other than the ASCII space), a space (invisible at the end of a line),
// the backslash, which marks escaped forms, and the double quote, so that
// "" can only be the empty name.
func unsafeInKey(r rune) bool {
	return !unicode.IsPrint(r) || r == ' ' || r == '\\' || r == '"'
}

// readKeys returns what a KEY argument may name, the likeliest first: the
// name its escapes spell (what shownKey printed), then the text as typed.
func readKeys(arg string) []string {
	if arg == `""` {
		return []string{"", arg}
	}
	if strings.Contains(arg, `\`) {
		if s, err := strconv.Unquote(`"` + arg + `"`); err == nil && s != arg {
			return []string{s, arg}
		}
	}
	return []string{arg}
}

// target is one KEY argument, located.
type target struct {
	name   string // the key it was read as (see readKeys)
	key    string // the key to give the limiter: name, or a stand-in for ""
	stored string // the Redis key holding its state (RedisKey(name) when none does)
	found  bool
}

// locate finds the state a KEY argument names. Each reading of it (see
// readKeys) is tried as a key, stored where RedisKey puts it, and then as
// a stored name, as "keys" prints it; the first whose Redis key exists
// wins. When the state sits under a name RedisKey does not produce for
// the limiter's key (a hashed name, or one no limiter wrote), the alias
// makes the limiter read it there.
func locate(ctx context.Context, rdb redis.UniversalClient, al *aliases, prefix, arg string) (target, error) {
	readings := readKeys(arg)
	for _, key := range readings {
		for _, stored := range []string{redislimit.RedisKey(prefix, key), prefix + "{" + key + "}"} {
			n, err := rdb.Exists(ctx, stored).Result()
			if err != nil {
				return target{}, err
			}
			if n == 0 {
				continue
			}
			t := target{name: key, key: key, stored: stored, found: true}
			if t.key == "" {
				t.key = "#" // the limiter refuses an empty key; any stand-in will do
			}
			if rk := redislimit.RedisKey(prefix, t.key); rk != stored {
				al.add(rk, stored)
			}
			return t, nil
		}
	}
	key := readings[0]
	return target{name: key, key: key, stored: redislimit.RedisKey(prefix, key)}, nil
}

// aliases renames Redis keys in every command a client sends, so that the
// limiter, which can only address a budget by its key, reads and deletes
// state stored under a name no key maps to. A go-redis hook runs before a
// cluster client picks the slot, so the renamed key is also routed right.
//
// Every argument equal to an alias is renamed, not only those in a key
// position: the aliases are Redis key names of the form <prefix>{#<hash>},
// which nothing else the limiter sends can equal.
type aliases struct {
	mu sync.RWMutex
	to map[string]string
}

func (a *aliases) add(from, to string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.to == nil {
		a.to = make(map[string]string)
	}
	a.to[from] = to
}

func (a *aliases) rename(cmd redis.Cmder) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if len(a.to) == 0 {
		return
	}
	args := cmd.Args()
	for i := 1; i < len(args); i++ {
		if s, ok := args[i].(string); ok {
			if to, ok := a.to[s]; ok {
				args[i] = to
			}
		}
	}
}

// DialHook implements redis.Hook; dialling is left alone.
func (a *aliases) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (a *aliases) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a.rename(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (a *aliases) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			a.rename(cmd)
		}
		return next(ctx, cmds)
	}
}
