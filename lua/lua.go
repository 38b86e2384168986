// Package lua holds the Redis scripts of the limiter, embedded from the
// .lua files beside this one (embed patterns cannot reach a parent
// directory, so the package lives with its scripts).
//
// Every script touches exactly one key, the hash of one budget, so it runs
// on one slot of a Redis Cluster. Times are integer microseconds on the
// Redis clock (TIME) unless the caller passes its own; replies are
// integers only. The Go twin of the arithmetic is internal/keystate.
package lua

import _ "embed"

// Acquire decides and spends one request; see acquire.lua.
//
//go:embed acquire.lua
var Acquire string

// Observe merges what a response said about the server's budget; see
// observe.lua.
//
//go:embed observe.lua
var Observe string

// Status reads one key's raw state; see status.lua.
//
//go:embed status.lua
var Status string
