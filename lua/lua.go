// Package lua holds the Redis scripts of the limiter, embedded from the
// .lua files beside this one (embed patterns cannot reach a parent
// directory, so the package lives with its scripts).
//
// Every key a script touches is the hash of one budget. Observe and status
// touch one; acquire decides the keys it is given independently of each
// other, and is given several only when they share a server (one slot of
// a Redis Cluster). Times are integer microseconds on the
// Redis clock (TIME) unless the caller passes its own; replies are
// integers, and the quotas travel as the text of the hash field that holds
// them. Each script is base.lua (bounds and integer helpers), prelude.lua
// (the quota model) and its own file, except that acquire keeps the
// prelude and acquire_full.lua inside a function it calls only for a key
// its fast paths cannot decide, and the prelude alone inside another, for
// its quota path: every closure a script defines is created again on
// every call, and those with many upvalues cost more than the fast path's
// decision. The Go twin of the arithmetic is
// internal/keystate.
package lua

import (
	_ "embed"
	"strings"
)

//go:embed base.lua
var base string

//go:embed prelude.lua
var prelude string

//go:embed acquire.lua
var acquire string

//go:embed acquire_full.lua
var acquireFull string

//go:embed observe.lua
var observe string

//go:embed status.lua
var status string

// The scripts, each with what it shares.
var (
	// Acquire decides and spends a group of requests; see acquire.lua.
	Acquire = withFull(base + acquire)
	// Observe merges what one or more responses said about the server's
	// budget, in turn; see observe.lua.
	Observe = base + prelude + observe
	// Status reads one key's raw state; see status.lua.
	Status = base + prelude + status
)

// fullMark is the line of acquire.lua where load_full goes.
const fullMark = "-- @full\n"

// quotaModel ends load_quota: the prelude's functions decide_quota uses.
const quotaModel = "return {decode_quotas = decode_quotas, encode_quotas = encode_quotas, roll_at = roll_at,\n" +
	"  in_flight = in_flight, available = available, reset_after = reset_after}\n"

// withFull puts load_full (the prelude and acquire_full.lua) and
// load_quota (the prelude alone) in functions of their own, in place of
// src's fullMark.
func withFull(src string) string {
	head, tail, ok := strings.Cut(src, fullMark)
	if !ok {
		panic("lua: acquire.lua lost its " + strings.TrimSpace(fullMark) + " line")
	}
	return head + "local function load_full()\n" + prelude + "\n" + acquireFull + "\nreturn decide_key\nend\n" +
		"local function load_quota()\n" + prelude + "\n" + quotaModel + "end\n" + tail
}
