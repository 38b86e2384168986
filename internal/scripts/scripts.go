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

// Client is what the runner needs of a go-redis client; *redis.Client,
// *redis.ClusterClient and every UniversalClient have it.
type Client interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
}

// Runner runs the scripts on one client. It is safe for concurrent use.
type Runner struct {
	rdb Client
	// now, when set, supplies the time passed to the scripts (client-time
	// mode, for servers that refuse TIME inside scripts); when nil the
	// scripts read the Redis clock.
	now func() time.Time
}

// NewRunner returns a runner on rdb. A nil now means server time.
func NewRunner(rdb Client, now func() time.Time) *Runner {
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
	return replyInts(cmd, s.Name)
}

// replyInts reads a script's integer array reply; a reply of another shape
// is ErrBadReply, a failed command its own error.
func replyInts(cmd *redis.Cmd, script string) ([]int64, error) {
	vals, err := cmd.Int64Slice()
	if err != nil {
		if errors.Is(err, redis.Nil) || cmd.Err() == nil {
			return nil, fmt.Errorf("%w: %s script: %v", srl.ErrBadReply, script, err)
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

// appendItem appends one request's part of acquire's ARGV.
func appendItem(args []any, it *keystate.Item) []any {
	args = append(args, it.N, it.MaxWait, it.Probe, len(it.Costs), it.NFixed, len(it.All)-it.NFixed)
	for _, c := range it.Costs {
		args = append(args, c.Unit, c.N)
	}
	for _, l := range it.All {
		args = append(args, l.Args()[:]...)
	}
	return args
}

func acquireArgs(now int64, items []keystate.Item) []any {
	size := 2
	for i := range items {
		size += 6 + 2*len(items[i].Costs) + 5*len(items[i].All)
	}
	args := make([]any, 0, size)
	args = append(args, now, len(items))
	for i := range items {
		args = appendItem(args, &items[i])
	}
	return args
}

// acquireReply is the number of values acquire replies per request
// before its marks: one in requests, then one per cost.
const acquireReply = 10

// decodeAcquire checks and converts acquire's reply for items.
func decodeAcquire(v []int64, items []keystate.Item, out []keystate.Result) error {
	want := 0
	for i := range items {
		want += acquireReply + 1 + len(items[i].Costs)
	}
	if len(v) != want {
		return fmt.Errorf("%w: acquire script replied %d values for %d requests", srl.ErrBadReply, len(v), len(items))
	}
	for i := range items {
		n := acquireReply + 1 + len(items[i].Costs)
		w := v[:n:n]
		v = v[n:]
		if w[0] < 0 || w[0] > 1 || w[1] < 0 || w[2] < -1 || w[3] < 0 || w[4] < 0 || w[4] > keystate.CauseProbe ||
			w[5] < 0 || w[6] < 0 || w[7] < 0 || w[8] < 0 || w[9] < 0 || w[9] > 1 {
			return fmt.Errorf("%w: acquire script replied %v", srl.ErrBadReply, w)
		}
		out[i] = keystate.Result{
			Allowed: w[0] == 1, Wait: w[1], Remaining: w[2], ResetAfter: w[3], Cause: w[4],
			QuotaLimit: w[5], QuotaRemaining: w[6], QuotaResetAfter: w[7], BlockedFor: w[8], Report: w[9] == 1,
		}
		for j, m := range w[acquireReply:] {
			if m < 0 || m > srl.MaxCount+1 || m > 0 && w[0] == 0 {
				return fmt.Errorf("%w: acquire script replied %v", srl.ErrBadReply, w)
			}
			out[i].Marks[j] = m
		}
	}
	return nil
}

// AcquireGroup decides items for one key, in order, in one script call,
// writing their results to out.
func (r *Runner) AcquireGroup(ctx context.Context, key string, items []keystate.Item, out []keystate.Result) error {
	v, err := r.run(ctx, Acquire, key, acquireArgs(r.nowArg(), items))
	if err != nil {
		return err
	}
	return decodeAcquire(v, items, out)
}

// Group is the requests of one key in a pipelined call.
type Group struct {
	Key     string
	Items   []keystate.Item
	Results []keystate.Result // filled by AcquireGroups, one per item
	Err     error
}

// AcquireGroups decides many keys' groups in one pipelined round trip:
// one script call per key. A group the server answers NOSCRIPT for (the
// script cache was lost) is sent once more with EVAL, in a second
// pipeline. Each group gets its own results or error.
func (r *Runner) AcquireGroups(ctx context.Context, groups []Group) {
	for i := range groups {
		g := &groups[i]
		g.Results = append(g.Results[:0], make([]keystate.Result, len(g.Items))...)
	}
	if len(groups) == 1 {
		// One group needs no pipeline (and its allocations).
		g := &groups[0]
		g.Err = r.AcquireGroup(ctx, g.Key, g.Items, g.Results)
		return
	}
	now := r.nowArg()
	cmds := make([]*redis.Cmd, len(groups))
	pipe := r.rdb.Pipeline()
	for i := range groups {
		cmds[i] = pipe.EvalSha(ctx, Acquire.SHA, []string{groups[i].Key}, acquireArgs(now, groups[i].Items)...)
	}
	_, execErr := pipe.Exec(ctx)
	var retry []int
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && IsNoScript(err) {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		pipe = r.rdb.Pipeline()
		for _, i := range retry {
			cmds[i] = pipe.Eval(ctx, Acquire.Src, []string{groups[i].Key}, acquireArgs(now, groups[i].Items)...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			execErr = err
		}
	}
	for i, cmd := range cmds {
		g := &groups[i]
		if cmd.Err() == nil && cmd.Val() == nil && execErr != nil {
			// The pipeline failed before this command was answered (no
			// connection, authentication refused): its error is the cause.
			g.Err = execErr
			continue
		}
		v, err := replyInts(cmd, Acquire.Name)
		if err == nil {
			err = decodeAcquire(v, g.Items, g.Results)
		}
		g.Err = err
	}
}

// Observe runs observe.lua.
func (r *Runner) Observe(ctx context.Context, key string, o keystate.Obs, p keystate.ObserveParams) (keystate.ObserveResult, error) {
	flags := 0
	if o.Limited {
		flags |= 1
	}
	if o.Succeeded {
		flags |= 2
	}
	if o.Bare {
		flags |= 4
	}
	if o.Charged != nil {
		flags |= 8
	}
	args := make([]any, 0, 10+3*len(o.Charged)+2*len(o.Refunded)+6*len(o.Quotas))
	args = append(args, r.nowArg(), o.Retry, flags, o.Date, p.Tolerance, p.BackoffBase, p.BackoffMax, len(o.Charged))
	for _, c := range o.Charged {
		args = append(args, c.Unit, c.N, c.Mark)
	}
	args = append(args, len(o.Refunded))
	for _, c := range o.Refunded {
		args = append(args, c.Unit, c.N)
	}
	args = append(args, len(o.Quotas))
	for _, q := range o.Quotas {
		args = append(args, q.Unit, q.Limit, q.Remaining, q.Reset, q.Window, q.Slack)
	}
	v, err := r.run(ctx, Observe, key, args)
	if err != nil {
		return keystate.ObserveResult{}, err
	}
	if len(v) != 4 || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0 {
		return keystate.ObserveResult{}, fmt.Errorf("%w: observe script replied %v", srl.ErrBadReply, v)
	}
	return keystate.ObserveResult{QuotaLimit: v[0], QuotaRemaining: v[1], ResetAfter: v[2], BlockedFor: v[3]}, nil
}

// Status runs status.lua and rebuilds the stored state of the given
// limits, with the Redis clock's now. Every value is bounded as the scripts
// bound it.
func (r *Runner) Status(ctx context.Context, key string, limits []keystate.Limit) (int64, keystate.State, error) {
	args := make([]any, 0, 1+len(limits))
	args = append(args, r.nowArg())
	for _, l := range limits {
		args = append(args, l.Field())
	}
	keys := []string{key}
	cmd := r.rdb.EvalSha(ctx, Status.SHA, keys, args...)
	if err := cmd.Err(); err != nil && IsNoScript(err) {
		cmd = r.rdb.Eval(ctx, Status.Src, keys, args...)
	}
	vals, err := cmd.Slice()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return 0, keystate.State{}, fmt.Errorf("%w: status script: %v", srl.ErrBadReply, err)
		}
		return 0, keystate.State{}, err
	}
	bad := func() (int64, keystate.State, error) {
		return 0, keystate.State{}, fmt.Errorf("%w: status script replied %v", srl.ErrBadReply, vals)
	}
	if len(vals) != 9+len(limits) {
		return bad()
	}
	ints := make([]int64, len(vals))
	for i, x := range vals {
		if i == 5 || i >= 9 && limits[i-9].Kind == keystate.KindWindow {
			continue
		}
		n, ok := x.(int64)
		if !ok {
			return bad()
		}
		ints[i] = n
	}
	quotas, ok := vals[5].(string)
	if !ok || ints[0] <= 0 {
		return bad()
	}
	st := keystate.State{
		BlockedUntil: ints[1],
		Throttles:    ints[2],
		ProbeUntil:   ints[3],
		BareUntil:    ints[4],
		Quotas:       keystate.DecodeQuotas(quotas, nil),
		Admitted:     ints[6], AdmittedSince: ints[7], Refused: ints[8],
	}
	for i, l := range limits {
		if l.Kind == keystate.KindWindow {
			s, ok := vals[9+i].(string)
			if !ok {
				return bad()
			}
			if w, ok := keystate.DecodeWindow(l, s); ok {
				st.SetWindow(w)
			}
			continue
		}
		if at := ints[9+i]; at > 0 {
			st.SetTAT(l, at)
		}
	}
	st.ClampRanges()
	return ints[0], st, nil
}
