// Package scripts runs the Lua scripts of package lua against Redis with
// typed arguments and replies: it encodes keystate values into ARGV,
// decodes the integer replies back, and recovers from NOSCRIPT (a flushed
// or restarted script cache) by sending the script once with EVAL, after
// which EVALSHA works again. It never runs a script inside a pipeline,
// where go-redis cannot recover NOSCRIPT.
package scripts

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
	"github.com/smartratelimit/smartratelimit/lua"
)

// Script is one Lua source with its SHA-1, computed here so that no round
// trip is spent loading it.
type Script struct {
	Name string
	Src  string
	SHA  string
}

func newScript(name, src string) *Script {
	sum := sha1.Sum([]byte(src))
	return &Script{Name: name, Src: src, SHA: hex.EncodeToString(sum[:])}
}

// The scripts, by name.
var (
	Acquire = newScript("acquire", lua.Acquire)
	Observe = newScript("observe", lua.Observe)
	Status  = newScript("status", lua.Status)
)

// Runner runs the scripts on one client. It is safe for concurrent use.
type Runner struct {
	rdb redis.Scripter
	// now, when set, supplies the time passed to the scripts (client-time
	// mode, for servers that refuse TIME inside scripts); when nil the
	// scripts read the Redis clock.
	now func() time.Time
}

// NewRunner returns a runner on rdb. A nil now means server time.
func NewRunner(rdb redis.Scripter, now func() time.Time) *Runner {
	return &Runner{rdb: rdb, now: now}
}

func (r *Runner) nowArg() int64 {
	if r.now == nil {
		return 0
	}
	return r.now().UnixMicro()
}

// run sends EVALSHA and, when the server has lost the script, EVAL once.
func (r *Runner) run(ctx context.Context, s *Script, key string, args []any) ([]int64, error) {
	keys := []string{key}
	cmd := r.rdb.EvalSha(ctx, s.SHA, keys, args...)
	if err := cmd.Err(); err != nil && IsNoScript(err) {
		cmd = r.rdb.Eval(ctx, s.Src, keys, args...)
	}
	vals, err := cmd.Int64Slice()
	if err != nil {
		if errors.Is(err, redis.Nil) || cmd.Err() == nil {
			return nil, fmt.Errorf("%w: %s script: %v", srl.ErrBadReply, s.Name, err)
		}
		return nil, err
	}
	return vals, nil
}

// IsNoScript reports a NOSCRIPT reply, whatever prefix the server adds.
func IsNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT") ||
		strings.Contains(err.Error(), "NOSCRIPT")
}

// appendLimitArgs appends the limit triples of acquire's ARGV.
func appendLimitArgs(args []any, limits []keystate.Limit) []any {
	for _, l := range limits {
		args = append(args, l.Field(), l.Interval, l.Burst)
	}
	return args
}

// Acquire runs acquire.lua; all and nFixed come from
// keystate.CompileRequest.
func (r *Runner) Acquire(ctx context.Context, key string, n, maxWait int64, all []keystate.Limit, nFixed int) (keystate.Result, error) {
	args := make([]any, 0, 5+3*len(all))
	args = append(args, r.nowArg(), n, maxWait, nFixed, len(all)-nFixed)
	args = appendLimitArgs(args, all)
	v, err := r.run(ctx, Acquire, key, args)
	if err != nil {
		return keystate.Result{}, err
	}
	if len(v) != 9 || v[0] < 0 || v[0] > 1 || v[1] < 0 || v[2] < -1 || v[3] < 0 || v[4] < 0 || v[4] > keystate.CauseBlocked ||
		v[5] < 0 || v[6] < 0 || v[7] < 0 || v[8] < 0 {
		return keystate.Result{}, fmt.Errorf("%w: acquire script replied %v", srl.ErrBadReply, v)
	}
	return keystate.Result{
		Allowed: v[0] == 1, Wait: v[1], Remaining: v[2], ResetAfter: v[3], Cause: v[4],
		QuotaLimit: v[5], QuotaRemaining: v[6], QuotaResetAfter: v[7], BlockedFor: v[8],
	}, nil
}

// Observe runs observe.lua.
func (r *Runner) Observe(ctx context.Context, key string, o keystate.Obs, p keystate.ObserveParams) (keystate.ObserveResult, error) {
	limited := 0
	if o.Limited {
		limited = 1
	}
	args := []any{r.nowArg(), o.Limit, o.Remaining, o.Reset, o.Window, o.Retry, limited, p.Tolerance, p.BackoffBase, p.BackoffMax}
	v, err := r.run(ctx, Observe, key, args)
	if err != nil {
		return keystate.ObserveResult{}, err
	}
	if len(v) != 5 || v[0] < keystate.WindowNone || v[0] > keystate.WindowOlder || v[1] < 0 || v[2] < 0 || v[3] < 0 || v[4] < 0 {
		return keystate.ObserveResult{}, fmt.Errorf("%w: observe script replied %v", srl.ErrBadReply, v)
	}
	return keystate.ObserveResult{Window: v[0], QuotaLimit: v[1], QuotaRemaining: v[2], ResetAfter: v[3], BlockedFor: v[4]}, nil
}

// Status runs status.lua and rebuilds the stored state of the given
// limits, with the Redis clock's now.
func (r *Runner) Status(ctx context.Context, key string, limits []keystate.Limit) (int64, keystate.State, error) {
	args := make([]any, 0, 1+len(limits))
	args = append(args, r.nowArg())
	for _, l := range limits {
		args = append(args, l.Field())
	}
	v, err := r.run(ctx, Status, key, args)
	if err != nil {
		return 0, keystate.State{}, err
	}
	if len(v) != 7+len(limits) || v[0] <= 0 {
		return 0, keystate.State{}, fmt.Errorf("%w: status script replied %v", srl.ErrBadReply, v)
	}
	st := keystate.State{
		BlockedUntil:   v[1],
		QuotaLimit:     v[2],
		QuotaRemaining: v[3],
		QuotaResetAt:   v[4],
		QuotaWindow:    v[5],
		Throttles:      v[6],
	}
	for i, l := range limits {
		if at := v[7+i]; at > 0 {
			st.SetTAT(l, at)
		}
	}
	return v[0], st, nil
}
