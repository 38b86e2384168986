package redislimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
	"github.com/smartratelimit/smartratelimit/internal/scripts"
)

// batcher sends acquire decisions to Redis in batches: a few workers each
// take whatever decisions are waiting, group them by key, and hand the
// groups to scripts.Runner.AcquireGroups, which decides the keys of one
// server (one cluster slot) in one script call. Requests for the same key
// share a group (the script applies them in order), so a hot key costs
// Redis one script run per batch instead of one per decision; many keys
// share one call and one round trip. An idle system pays no delay: a
// worker sends as soon as it has anything (having yielded once, when it
// has little, to the callers about to join it), and with a client that
// honours context deadlines on its sockets a decision that finds nothing
// else of its node waiting or in flight is sent by its caller, on its own
// goroutine (see acquire).
type batcher struct {
	run     *scripts.Runner
	queue   chan *pending
	timeout time.Duration
	// direct says the client bounds a call by its context's deadline, so
	// a caller may send its own decision and still keep the budget.
	direct bool
	// deciding counts the decisions between acquire's start and end.
	deciding atomic.Int32
	stop     chan struct{}
	stopped  sync.Once
	// stopErr is what a decision not yet sent gets when the batcher stops:
	// ErrClosedLimiter, or errNodeRetired (set before stop is closed).
	stopErr error
	workers sync.WaitGroup
}

// pending is one decision waiting for its batch. Pendings are reused: the
// worker's send on done is its last touch, so a caller that received it
// may put the pending back in the pool (an abandoned one is left to the
// garbage collector).
type pending struct {
	key  string
	item keystate.Item
	// limits and costs hold item.All and item.Costs, so a decision needs no
	// slice of its own.
	limits [srl.MaxLimits]keystate.Limit
	costs  [srl.MaxQuotas]keystate.Cost
	res    keystate.Result
	err    error
	done   chan struct{} // capacity 1: the worker never blocks on it
	// state is queued until a worker takes it into a batch (sent) or its
	// caller gives up first (abandoned: its budget or context ended, or
	// the batcher stopped), when the worker skips it. A caller gives up
	// on a sent decision only for its budget or context: one the batcher
	// stopped under is still delivered, since Redis may have spent it.
	state atomic.Int32
	// group and slot say where the worker put it (group < 0: not sent).
	group, slot int
}

// The states of a pending.
const (
	queued int32 = iota
	sent
	abandoned
)

const (
	maxBatch = 256
	// maxPerCall bounds the requests of one key decided in one script
	// call, so one call's arguments stay small.
	maxPerCall = 64
	queueSize  = 4096
	// smallBatch: a worker that finds fewer decisions waiting yields once
	// before it sends them (see work).
	smallBatch = 8
)

// batchWorkers is how many pipelines a node may have in flight: enough to
// keep the round trips overlapping, few enough that batches stay large
// (requests for one key only share a script call within one batch). On 2
// cores 3 beat 2: a batch can be in Redis, one on its way and one with
// the callers it woke, so Redis does not wait for the next (10,000 keys,
// 64 goroutines: 1.08-1.13x rueidislimiter in four runs against 0.98-1.05x
// with 2, the same minutes).
func batchWorkers() int { return max(3, min(runtime.GOMAXPROCS(0), 8)) }

func newBatcher(run *scripts.Runner, timeout time.Duration, direct bool) *batcher {
	b := &batcher{run: run, queue: make(chan *pending, queueSize), timeout: timeout, direct: direct, stop: make(chan struct{})}
	for i := 0; i < batchWorkers(); i++ {
		b.workers.Add(1)
		go b.work()
	}
	return b
}

// stopTimer stops t so that it may be reset and pooled. In a program whose
// main module's go.mod says go 1.22 or older (asynctimerchan=1), a timer
// that fired while its caller took another case keeps its value in t.C,
// which would end the next decision given the timer at once: it is
// drained. (With the newer timers Stop leaves nothing to drain.)
func stopTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
}

// errQueueFull fails a decision at once when Redis is not keeping up.
var errQueueFull = fmt.Errorf("%w: %d decisions already waiting for redis", context.DeadlineExceeded, queueSize)

var (
	pendings = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}
	timers   = sync.Pool{New: func() any { return time.NewTimer(time.Hour) }}
)

// acquire decides one request, for ctx or the decision budget, whichever
// ends first: the caller's context ending is reported as callerDone, the
// budget as errDecisionTimeout.
//
// A decision alone on its node (nothing else waiting or in flight: a
// sequential caller, an idle process) is sent by the caller itself when
// the client honours context deadlines: a worker that sleeps between
// requests costs a wake-up to hand the decision to and another to hand it
// back (an HTTP client's sequential requests on a 2-core machine: a median
// 16 µs a request, as much as the script). Otherwise it is queued for the
// workers, which honour the budget with a pooled timer, so a decision
// costs no context of its own, and decisions that arrive together share
// calls.
func (b *batcher) acquire(ctx context.Context, key string, it *keystate.Item) (keystate.Result, error) {
	select {
	case <-b.stop:
		// (Queued, it would wait in a queue no worker reads.)
		return keystate.Result{}, b.stopErr
	default:
	}
	defer b.deciding.Add(-1)
	if b.deciding.Add(1) == 1 && b.direct {
		return b.decideNow(ctx, key, it)
	}
	p := pendings.Get().(*pending)
	p.key, p.err, p.res = key, nil, keystate.Result{}
	p.state.Store(queued)
	it.CopyTo(&p.item, p.limits[:], p.costs[:])
	select {
	case b.queue <- p:
	default:
		pendings.Put(p)
		return keystate.Result{}, errQueueFull
	}
	t := timers.Get().(*time.Timer)
	t.Reset(b.timeout)
	defer func() { stopTimer(t); timers.Put(t) }()
	stop := b.stop
	for {
		select {
		case <-p.done:
			res, err := p.res, p.err
			pendings.Put(p)
			return res, err
		case <-ctx.Done():
			p.state.Store(abandoned)
			return keystate.Result{}, callerDone{ctx.Err()}
		case <-t.C:
			p.state.Store(abandoned)
			return keystate.Result{}, errDecisionTimeout
		case <-stop:
			// The limiter closed under the call: a decision not yet sent
			// is not, one already sent is waited for (Redis may have spent
			// it, and a retired node's would otherwise be sent again
			// elsewhere).
			if p.state.CompareAndSwap(queued, abandoned) {
				return keystate.Result{}, b.stopErr
			}
			stop = nil
		}
	}
}

// decideNow sends one decision from the caller's goroutine, under the
// decision budget as a context deadline, which the client honours.
func (b *batcher) decideNow(ctx context.Context, key string, it *keystate.Item) (keystate.Result, error) {
	budgetEnds := time.Now().Add(b.timeout)
	callCtx, cancel := context.WithDeadlineCause(ctx, budgetEnds, errDecisionTimeout)
	items := [1]keystate.Item{*it}
	var out [1]keystate.Result
	err := b.run.AcquireGroup(callCtx, key, items[:], out[:])
	cancel()
	if err != nil {
		return keystate.Result{}, budgetError(ctx, budgetEnds, err)
	}
	return out[0], nil
}

// close stops the workers once the batches in flight are done, waiting at
// most wait; the decisions not yet sent end with err. It may be called more
// than once (the first err wins).
func (b *batcher) close(wait time.Duration, err error) {
	b.stopped.Do(func() { b.stopErr = err; close(b.stop) })
	done := make(chan struct{})
	go func() { b.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

func (b *batcher) work() {
	defer b.workers.Done()
	batch := make([]*pending, 0, maxBatch)
	var groups []scripts.Group
	index := make(map[string]int)
	for {
		batch = batch[:0]
		select {
		case p := <-b.queue:
			batch = append(batch, p)
		case <-b.stop:
			return
		}
		batch = b.fill(batch)
		if len(batch) < smallBatch {
			// The first decision of a batch is often the first of the
			// callers a delivery just woke, the others about to queue
			// theirs: one yield lets them join this call instead of
			// paying one each (on 10,000 keys a fifth of the calls held
			// one decision). With nothing else to run it returns at once.
			runtime.Gosched()
			batch = b.fill(batch)
		}
		groups = b.group(batch, groups[:0], index)
		if len(groups) == 0 {
			continue
		}
		deadline := time.Now().Add(b.timeout)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		b.run.AcquireGroups(ctx, groups)
		cancel()
		if !time.Now().Before(deadline) {
			budgetSpent(groups)
		}
		b.deliver(batch, groups)
	}
}

// fill adds to batch what is waiting in the queue, without waiting, up to
// maxBatch.
func (b *batcher) fill(batch []*pending) []*pending {
	for len(batch) < maxBatch {
		select {
		case p := <-b.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// budgetSpent marks the timeouts of a batch that ran out of its budget as
// the exceeded budget: a client that sets its socket deadlines from the
// context reports an i/o timeout, which can reach the caller a moment
// before the caller's own budget timer fires.
func budgetSpent(groups []scripts.Group) {
	for i := range groups {
		err := groups[i].Err
		var netErr net.Error
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
		if timedOut && !errors.Is(err, errDecisionTimeout) {
			groups[i].Err = fmt.Errorf("%w: %w", errDecisionTimeout, err)
		}
	}
}

// group sorts the live decisions of a batch into one group per key (a
// key with more than maxPerCall decisions gets several groups), noting in
// each decision where it went.
func (b *batcher) group(batch []*pending, groups []scripts.Group, index map[string]int) []scripts.Group {
	clear(index)
	for _, p := range batch {
		p.group = -1
		if !p.state.CompareAndSwap(queued, sent) {
			continue
		}
		gi, ok := index[p.key]
		if !ok || len(groups[gi].Items) >= maxPerCall {
			gi = len(groups)
			// Reuse the slices of an earlier batch's group in this place.
			groups = slices.Grow(groups, 1)[:gi+1]
			g := &groups[gi]
			g.Key, g.Items, g.Err = p.key, g.Items[:0], nil
			index[p.key] = gi
		}
		p.group, p.slot = gi, len(groups[gi].Items)
		groups[gi].Items = append(groups[gi].Items, p.item)
	}
	return groups
}

// deliver hands each decision that was sent its result or its group's
// error.
func (b *batcher) deliver(batch []*pending, groups []scripts.Group) {
	for _, p := range batch {
		if p.group < 0 {
			continue
		}
		if g := &groups[p.group]; g.Err != nil {
			p.err = g.Err
		} else {
			p.res = g.Results[p.slot]
		}
		p.done <- struct{}{}
	}
}
