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
	"slices"
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
	// together says which keys one acquire call may decide together.
	together sharing
}

// sharing is which keys may share one script call.
type sharing int

const (
	// shareNone: one key per call. For clients that may send a call's
	// keys to one shard whatever they hash to (a Ring, a client we do not
	// know).
	shareNone sharing = iota
	// shareAll: one server holds every key (a standalone or Sentinel
	// primary).
	shareAll
	// shareSlot: keys of one cluster slot.
	shareSlot
)

// NewRunner returns a runner on rdb. A nil now means server time.
func NewRunner(rdb Client, now func() time.Time) *Runner {
	r := &Runner{rdb: rdb, now: now, together: shareNone}
	switch rdb.(type) {
	case *redis.Client:
		r.together = shareAll
	case *redis.ClusterClient:
		r.together = shareSlot
	}
	return r
}

// MaxKeysPerCall bounds the keys one acquire call decides, so that one
// call holds Redis for a bounded time (a few µs per key); more keys of a
// batch go in further calls of the same pipeline.
const MaxKeysPerCall = 64

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
	args := make([]any, 0, 1+groupArgs(items))
	args = append(args, now)
	return appendGroup(args, items)
}

// plainCounts holds -R boxed for the R of most groups: an int outside
// 0..255 allocates each time it becomes an argument.
var plainCounts = func() (a [256]any) {
	for i := range a {
		a[i] = -i
	}
	return a
}()

// allPlain says whether every item counts only in requests, against
// pacing limits only, without probing.
func allPlain(items []keystate.Item) bool {
	for i := range items {
		it := &items[i]
		if it.Probe != 0 || len(it.Costs) != 0 {
			return false
		}
		for _, l := range it.All {
			if l.Kind != keystate.KindPacing {
				return false
			}
		}
	}
	return true
}

// groupArgs is how many arguments one key's requests take at most (runs
// of plain requests take fewer).
func groupArgs(items []keystate.Item) int {
	size := 1
	for i := range items {
		size += 6 + 2*len(items[i].Costs) + 5*len(items[i].All)
	}
	return size
}

// appendGroup appends one key's part of acquire's ARGV: R, then each
// request. When every request is plain, which lets the script take its
// fast path (decide_fast) on a key that holds nothing else, it is -R, then
// the requests in runs of identical ones: the run's length, then its
// request once (a hot key's batch is mostly one run).
func appendGroup(args []any, items []keystate.Item) []any {
	n := len(items)
	if !allPlain(items) {
		args = append(args, n)
		for i := range items {
			args = appendItem(args, &items[i])
		}
		return args
	}
	if n < len(plainCounts) {
		args = append(args, plainCounts[n])
	} else {
		args = append(args, -n)
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && sameItem(&items[i], &items[j]) {
			j++
		}
		args = append(args, j-i)
		args = appendItem(args, &items[i])
		i = j
	}
	return args
}

// sameAsPrevious, then a count c, stands for the parts of acquire's ARGV
// of c keys whose requests are plain and the same as the key's before
// them: many keys of one API, one request each, cost Redis two arguments
// in all instead of 13 a key.
var sameAsPrevious any = "="

// samePlainGroup says whether b may be sent as sameAsPrevious after a:
// the same plain requests in the same order (sameItem leaves out what
// makes a request not plain, so both are checked).
func samePlainGroup(a, b []keystate.Item) bool {
	if len(a) != len(b) || !allPlain(a) || !allPlain(b) {
		return false
	}
	for i := range a {
		if !sameItem(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

// sameItem says whether two plain items are the same request.
func sameItem(a, b *keystate.Item) bool {
	return a.N == b.N && a.MaxWait == b.MaxWait && a.NFixed == b.NFixed && slices.Equal(a.All, b.All)
}

// acquireReply is the number of values acquire replies per request
// before its marks: one in requests, then one per cost. plainReply is the
// length of the short form: 2 (refused by a limit) or 3 (admitted), wait,
// remaining, reset, with no quota, block, report or marks. runReply is the
// length of the shortest form, for a request with one pacing limit: 4
// (admitted) or 5 (refused by the limit), then the limit's TAT after the
// decision less now, from which runResult works out the rest.
const (
	acquireReply = 10
	plainReply   = 4
	runReply     = 2
)

// runResult is the result of a request with one pacing limit of emission
// interval T and burst B (as decide_run replies it: whether it was
// admitted and the limit's TAT after the decision, ahead of now by
// ahead), which the script no longer spells out: the same numbers it
// would have replied in the short form.
func runResult(it *keystate.Item, admitted bool, ahead int64) (keystate.Result, bool) {
	if len(it.All) != 1 || len(it.Costs) > 0 || it.All[0].Kind != keystate.KindPacing || it.All[0].Interval <= 0 || ahead < 0 {
		return keystate.Result{}, false
	}
	T, room := it.All[0].Interval, it.All[0].Burst*it.All[0].Interval
	res := keystate.Result{Allowed: admitted, ResetAfter: ahead, Remaining: max((room-ahead)/T, 0)}
	if admitted {
		res.Wait = max(ahead-room, 0)
	} else {
		res.Wait = max(ahead+it.N*T-room, 0)
		res.Cause = keystate.CauseLimit
	}
	return res, true
}

// errNotAHash is what a key whose value is not a hash gets, when the
// script decided the call's other keys (the server's own words, which
// the limiter classifies as such).
var errNotAHash = errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")

// decodeAcquire checks and converts one key's part of acquire's reply for
// items, and returns the rest of the reply.
func decodeAcquire(v []int64, items []keystate.Item, out []keystate.Result) ([]int64, error) {
	if len(v) > 0 && v[0] == -1 {
		return v[1:], errNotAHash
	}
	for i := range items {
		if len(v) >= runReply && (v[0] == 4 || v[0] == 5) {
			res, ok := runResult(&items[i], v[0] == 4, v[1])
			if !ok {
				return nil, fmt.Errorf("%w: acquire script replied %v", srl.ErrBadReply, v[:runReply])
			}
			out[i] = res
			v = v[runReply:]
			continue
		}
		if len(v) >= plainReply && (v[0] == 2 || v[0] == 3) {
			// The short form of a decision on pacing limits alone.
			if v[1] < 0 || v[2] < -1 || v[3] < 0 || len(items[i].Costs) > 0 {
				return nil, fmt.Errorf("%w: acquire script replied %v", srl.ErrBadReply, v[:plainReply])
			}
			out[i] = keystate.Result{Allowed: v[0] == 3, Wait: v[1], Remaining: v[2], ResetAfter: v[3]}
			if v[0] == 2 {
				out[i].Cause = keystate.CauseLimit
			}
			v = v[plainReply:]
			continue
		}
		n := acquireReply + 1 + len(items[i].Costs)
		if len(v) < n {
			return nil, fmt.Errorf("%w: acquire script replied too few values for %d requests", srl.ErrBadReply, len(items))
		}
		w := v[:n:n]
		v = v[n:]
		if w[0] < 0 || w[0] > 1 || w[1] < 0 || w[2] < -1 || w[3] < 0 || w[4] < 0 || w[4] > keystate.CauseProbe ||
			w[5] < 0 || w[6] < 0 || w[7] < 0 || w[8] < 0 || w[9] < 0 || w[9] > 3 || w[9] == 2 {
			return nil, fmt.Errorf("%w: acquire script replied %v", srl.ErrBadReply, w)
		}
		out[i] = keystate.Result{
			Allowed: w[0] == 1, Wait: w[1], Remaining: w[2], ResetAfter: w[3], Cause: w[4],
			QuotaLimit: w[5], QuotaRemaining: w[6], QuotaResetAfter: w[7], BlockedFor: w[8], Report: w[9] > 0, ReportNow: w[9] == 3,
		}
		for j, m := range w[acquireReply:] {
			if m < 0 || m > srl.MaxCount+1 || m > 0 && w[0] == 0 {
				return nil, fmt.Errorf("%w: acquire script replied %v", srl.ErrBadReply, w)
			}
			out[i].Marks[j] = m
		}
	}
	return v, nil
}

// AcquireGroup decides items for one key, in order, in one script call,
// writing their results to out.
func (r *Runner) AcquireGroup(ctx context.Context, key string, items []keystate.Item, out []keystate.Result) error {
	v, err := r.run(ctx, Acquire, key, acquireArgs(r.nowArg(), items))
	if err != nil {
		return err
	}
	rest, err := decodeAcquire(v, items, out)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%w: acquire script replied %d values too many", srl.ErrBadReply, len(rest))
	}
	return err
}

// Group is the requests of one key in a batch.
type Group struct {
	Key     string
	Items   []keystate.Item
	Results []keystate.Result // filled by AcquireGroups, one per item
	Err     error
}

// AcquireGroups decides many keys' groups in one round trip. Keys that may
// share a script call (all of them on one server; one slot's on a
// cluster) are decided together, up to MaxKeysPerCall per call: the
// script's fixed cost and the clock reading are paid once per call, not
// per key. The calls go in one pipeline; a call the server answers
// NOSCRIPT for (the script cache was lost) is sent once more with EVAL,
// in a second pipeline. Each group gets its own results or error: a call
// that fails fails its groups, a key that is not a hash only its own.
func (r *Runner) AcquireGroups(ctx context.Context, groups []Group) {
	for i := range groups {
		g := &groups[i]
		g.Results = append(g.Results[:0], make([]keystate.Result, len(g.Items))...)
	}
	calls := r.plan(groups)
	now := r.nowArg()
	keys := make([][]string, len(calls))
	args := make([][]any, len(calls))
	for c, members := range calls {
		size := 1
		for _, gi := range members {
			size += groupArgs(groups[gi].Items)
		}
		keys[c] = make([]string, len(members))
		args[c] = make([]any, 0, size)
		args[c] = append(args[c], now)
		var prev []keystate.Item
		for k := 0; k < len(members); k++ {
			items := groups[members[k]].Items
			keys[c][k] = groups[members[k]].Key
			if k == 0 || !samePlainGroup(prev, items) {
				args[c] = appendGroup(args[c], items)
				prev = items
				continue
			}
			repeats := 1
			for k+repeats < len(members) && samePlainGroup(prev, groups[members[k+repeats]].Items) {
				keys[c][k+repeats] = groups[members[k+repeats]].Key
				repeats++
			}
			args[c] = append(args[c], sameAsPrevious, repeats)
			k += repeats - 1
		}
	}
	cmds := make([]*redis.Cmd, len(calls))
	var execErr error
	if len(calls) == 1 {
		// One call needs no pipeline (and its allocations).
		cmds[0] = r.rdb.EvalSha(ctx, Acquire.SHA, keys[0], args[0]...)
		if err := cmds[0].Err(); err != nil && IsNoScript(err) {
			cmds[0] = r.rdb.Eval(ctx, Acquire.Src, keys[0], args[0]...)
		}
	} else {
		pipe := r.rdb.Pipeline()
		for c := range calls {
			cmds[c] = pipe.EvalSha(ctx, Acquire.SHA, keys[c], args[c]...)
		}
		_, execErr = pipe.Exec(ctx)
		var retry []int
		for c, cmd := range cmds {
			if err := cmd.Err(); err != nil && IsNoScript(err) {
				retry = append(retry, c)
			}
		}
		if len(retry) > 0 {
			pipe = r.rdb.Pipeline()
			for _, c := range retry {
				cmds[c] = pipe.Eval(ctx, Acquire.Src, keys[c], args[c]...)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				execErr = err
			}
		}
	}
	for c, cmd := range cmds {
		r.deliver(cmd, execErr, groups, calls[c])
	}
}

// deliver decodes one call's reply into its groups.
func (r *Runner) deliver(cmd *redis.Cmd, execErr error, groups []Group, members []int) {
	fail := func(err error) {
		for _, gi := range members {
			groups[gi].Err = err
		}
	}
	if cmd.Err() == nil && cmd.Val() == nil && execErr != nil {
		// The pipeline failed before this command was answered (no
		// connection, authentication refused): its error is the cause.
		fail(execErr)
		return
	}
	v, err := replyInts(cmd, Acquire.Name)
	if err != nil {
		fail(err)
		return
	}
	for _, gi := range members {
		g := &groups[gi]
		v, g.Err = decodeAcquire(v, g.Items, g.Results)
		if g.Err != nil && g.Err != errNotAHash {
			fail(g.Err)
			return
		}
	}
	if len(v) > 0 {
		fail(fmt.Errorf("%w: acquire script replied %d values too many", srl.ErrBadReply, len(v)))
	}
}

// plan sorts groups into script calls: the indexes of the groups each
// call decides, in order.
func (r *Runner) plan(groups []Group) [][]int {
	calls := make([][]int, 0, 1)
	switch r.together {
	case shareAll:
		for start := 0; start < len(groups); start += MaxKeysPerCall {
			members := make([]int, 0, min(MaxKeysPerCall, len(groups)-start))
			for gi := start; gi < min(start+MaxKeysPerCall, len(groups)); gi++ {
				members = append(members, gi)
			}
			calls = append(calls, members)
		}
	case shareSlot:
		open := map[uint16]int{} // slot → its call still taking keys
		for gi := range groups {
			slot := Slot(groups[gi].Key)
			c, ok := open[slot]
			if !ok || len(calls[c]) == MaxKeysPerCall {
				c = len(calls)
				calls = append(calls, nil)
				open[slot] = c
			}
			calls[c] = append(calls[c], gi)
		}
	default:
		for gi := range groups {
			calls = append(calls, []int{gi})
		}
	}
	return calls
}

// Observe runs observe.lua for one observation.
func (r *Runner) Observe(ctx context.Context, key string, o keystate.Obs, p keystate.ObserveParams) (keystate.ObserveResult, error) {
	return r.ObserveMany(ctx, key, []keystate.Obs{o}, p)
}

// ObserveMany runs observe.lua once for several observations of key,
// merged in order at one now, as that many State.Observe calls would; the
// result is the state after the last.
func (r *Runner) ObserveMany(ctx context.Context, key string, os []keystate.Obs, p keystate.ObserveParams) (keystate.ObserveResult, error) {
	size := 4
	for i := range os {
		size += 6 + 3*len(os[i].Charged) + 2*len(os[i].Refunded) + 6*len(os[i].Quotas)
	}
	args := make([]any, 0, size)
	args = append(args, r.nowArg(), p.Tolerance, p.BackoffBase, p.BackoffMax)
	for i := range os {
		args = appendObs(args, &os[i])
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

// appendObs appends one observation's part of observe's ARGV.
func appendObs(args []any, o *keystate.Obs) []any {
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
	args = append(args, o.Retry, flags, o.Date, len(o.Charged))
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
	return args
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
