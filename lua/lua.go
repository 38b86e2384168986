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
// them. Each script is prelude.lua (integer helpers and the quota model)
// followed by its own file. The Go twin of the arithmetic is
// internal/keystate.
package lua

import _ "embed"

//go:embed prelude.lua
var prelude string

//go:embed acquire.lua
var acquire string

//go:embed observe.lua
var observe string

//go:embed status.lua
var status string

// The scripts, each with the prelude.
var (
	// Acquire decides and spends a group of requests; see acquire.lua.
	Acquire = prelude + acquire
	// Observe merges what a response said about the server's budget; see
	// observe.lua.
	Observe = prelude + observe
	// Status reads one key's raw state; see status.lua.
	Status = prelude + status
)
