package redislimit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
)

func newMini(t *testing.T, opts *redis.Options) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	if opts == nil {
		opts = &redis.Options{}
	}
	o := *opts
	o.Addr = mr.Addr()
	rdb := redis.NewClient(&o)
	t.Cleanup(func() { _ = rdb.Close() })
	return mr, rdb
}

// TestDecisionBudgetHolds: a Redis that hangs costs one decision budget,
// whether or not the client honours context deadlines on its sockets.
func TestDecisionBudgetHolds(t *testing.T) {
	for _, ctxTimeouts := range []bool{false, true} {
		name := map[bool]string{false: "client ignores deadlines", true: "client honours deadlines"}[ctxTimeouts]
		t.Run(name, func(t *testing.T) {
			mr, rdb := newMini(t, &redis.Options{ContextTimeoutEnabled: ctxTimeouts, MaxRetries: -1, ReadTimeout: 3 * time.Second})
			mr.Server().SetPreHook(func(_ *server.Peer, cmd string, _ ...string) bool {
				if strings.EqualFold(cmd, "evalsha") {
					time.Sleep(time.Second)
				}
				return false
			})
			closed := New(rdb, WithDecisionTimeout(50*time.Millisecond), WithFailurePolicy(FailClosed))
			start := time.Now()
			_, err := closed.Allow(context.Background(), "slow", srl.PerSecond(1))
			took := time.Since(start)
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fail closed: error %v, want ErrUnavailable wrapping the exceeded budget", err)
			}
			// Far below the 1s the server takes: the call was abandoned.
			if took > 500*time.Millisecond {
				t.Fatalf("decision took %v with a 50ms budget", took)
			}
			local := New(rdb, WithDecisionTimeout(50*time.Millisecond))
			start = time.Now()
			d, err := local.Allow(context.Background(), "slow", srl.PerSecond(1))
			if err != nil || !d.Allowed || !d.Degraded || time.Since(start) > 500*time.Millisecond {
				t.Fatalf("fallback: %+v, %v after %v; want a degraded admission within the budget", d, err, time.Since(start))
			}
		})
	}
}

// TestCallerCancellationIsNotAnOutage: a caller's own context ending is
// returned as is, not as Redis being unavailable.
func TestCallerCancellationIsNotAnOutage(t *testing.T) {
	_, rdb := newMini(t, nil)
	l := New(rdb)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Allow(ctx, "k", srl.PerSecond(1))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v, want context.Canceled and not ErrUnavailable", err)
	}

	// A caller deadline shorter than the budget, on a Redis that hangs.
	for _, ctxTimeouts := range []bool{false, true} {
		mr, rdb := newMini(t, &redis.Options{ContextTimeoutEnabled: ctxTimeouts, MaxRetries: -1})
		mr.Server().SetPreHook(func(_ *server.Peer, cmd string, _ ...string) bool {
			time.Sleep(300 * time.Millisecond)
			return false
		})
		l := New(rdb, WithDecisionTimeout(5*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := l.Allow(ctx, "k", srl.PerSecond(1))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
			t.Errorf("ContextTimeoutEnabled=%v: error %v, want the caller's deadline, not ErrUnavailable", ctxTimeouts, err)
		}
	}
}

func TestNoScriptIsRecovered(t *testing.T) {
	mr, rdb := newMini(t, nil)
	l := New(rdb, WithDecisionTimeout(5*time.Second))
	ctx := context.Background()
	limit := srl.PerSecond(100).WithBurst(10)
	if _, err := l.Allow(ctx, "k", limit); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := mr.CommandCount()
	if d, err := l.Allow(ctx, "k", limit); err != nil || !d.Allowed {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v", d, err)
	}
	// EVALSHA (NOSCRIPT), EVAL, and the script's own TIME, HGETALL, HSET
	// (the TTL set by the first call still reaches far enough): the script
	// body ran once.
	if n := mr.CommandCount() - before; n != 5 {
		t.Fatalf("%d commands after the flush, want 5 (one failed EVALSHA, one EVAL running 3)", n)
	}
}

func TestServerStatesAreUnavailable(t *testing.T) {
	for _, msg := range []string{
		"LOADING Redis is loading the dataset in memory",
		"READONLY You can't write against a read only replica.",
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
		"CLUSTERDOWN The cluster is down",
		"TRYAGAIN Multiple keys request during rehashing of slot",
	} {
		mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
		mr.SetError(msg)
		l := New(rdb, WithDecisionTimeout(5*time.Second), WithFailurePolicy(FailClosed))
		if _, err := l.Allow(context.Background(), "k", srl.PerSecond(1)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%q: error %v, want ErrUnavailable", msg, err)
		}
		d, err := New(rdb, WithDecisionTimeout(5*time.Second)).Allow(context.Background(), "k", srl.PerSecond(1))
		if err != nil || !d.Degraded {
			t.Errorf("%q under the default policy: %+v, %v; want a degraded decision", msg, d, err)
		}
	}
}

func TestAuthFailureIsMisconfigured(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{Password: "wrong"})
	mr.RequireAuth("right")
	l := New(rdb, WithDecisionTimeout(5*time.Second))
	if _, err := l.Allow(context.Background(), "k", srl.PerSecond(1)); !errors.Is(err, ErrMisconfigured) {
		t.Fatalf("error %v, want ErrMisconfigured", err)
	}
}

func TestWrongType(t *testing.T) {
	mr, rdb := newMini(t, nil)
	if err := mr.Set(RedisKey(DefaultKeyPrefix, "squat"), "x"); err != nil {
		t.Fatal(err)
	}
	l := New(rdb, WithDecisionTimeout(5*time.Second))
	_, err := l.Allow(context.Background(), "squat", srl.PerSecond(1))
	var ke *srl.KeyError
	if !errors.As(err, &ke) || ke.Key != "squat" || !errors.Is(err, srl.ErrWrongType) || !strings.Contains(err.Error(), "srl:{squat}") {
		t.Fatalf("error %v, want a KeyError naming the key and its Redis name", err)
	}
}

// TestTimeRefusedInScripts models managed Redis offerings that refuse TIME
// inside scripts: a clear configuration error pointing at WithClientTime,
// which then works.
func TestTimeRefusedInScripts(t *testing.T) {
	mr, rdb := newMini(t, nil)
	mr.Server().SetPreHook(func(c *server.Peer, cmd string, _ ...string) bool {
		if strings.EqualFold(cmd, "time") {
			c.WriteError("ERR This Redis command is not allowed from script")
			return true
		}
		return false
	})
	ctx := context.Background()
	_, err := New(rdb, WithDecisionTimeout(5*time.Second)).Allow(ctx, "k", srl.PerSecond(1))
	if !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), "WithClientTime") {
		t.Fatalf("server time refused: %v, want ErrMisconfigured suggesting WithClientTime", err)
	}
	d, err := New(rdb, WithClientTime(), WithDecisionTimeout(5*time.Second)).Allow(ctx, "k", srl.PerSecond(1))
	if err != nil || !d.Allowed {
		t.Fatalf("client time: %+v, %v", d, err)
	}
}

func TestConstructionErrorsSurfaceOnUse(t *testing.T) {
	_, rdb := newMini(t, nil)
	tests := []struct {
		name string
		l    *Limiter
		want string
	}{
		{"nil client", New(nil), "nil redis client"},
		{"brace in prefix", New(rdb, WithKeyPrefix("app{1}:")), "must not contain braces"},
		{"zero timeout", New(rdb, WithDecisionTimeout(0)), "must be positive"},
		{"bad backoff", New(rdb, WithThrottleBackoff(time.Minute, time.Second)), "throttle backoff"},
		{"nil clock", New(rdb, WithClientClock(nil)), "nil clock"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		_, errAllow := tc.l.Allow(ctx, "k", srl.PerSecond(1))
		errObserve := tc.l.Observe(ctx, "k", srl.Observation{RetryAfter: time.Second})
		_, errStatus := tc.l.Status(ctx, "k")
		errReset := tc.l.Reset(ctx, "k")
		for _, err := range []error{errAllow, errObserve, errStatus, errReset} {
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "redislimit: ") {
				t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
			}
		}
	}
}

func TestClosedLimiter(t *testing.T) {
	_, rdb := newMini(t, nil)
	l := New(rdb)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Allow(context.Background(), "k", srl.PerSecond(1)); !errors.Is(err, srl.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Close closed the caller's client: %v", err)
	}
}

// TestWaitSleepsTheReservation runs Wait against miniredis on the real
// clock: three callers on 50/s get slots 20ms apart.
func TestWaitSleepsTheReservation(t *testing.T) {
	_, rdb := newMini(t, nil)
	l := New(rdb, WithDecisionTimeout(5*time.Second))
	start := time.Now()
	for i := 0; i < 3; i++ {
		if err := l.Wait(context.Background(), "w", srl.PerSecond(50)); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Fatalf("three Waits on 50/s took %v, less than the two 20ms intervals", took)
	}
}

func TestObserveWithNothingCostsNoRoundTrip(t *testing.T) {
	mr, rdb := newMini(t, nil)
	l := New(rdb)
	before := mr.CommandCount()
	if err := l.Observe(context.Background(), "k", srl.Observation{Limit: 10, Remaining: 3}); err != nil {
		t.Fatal(err)
	}
	if n := mr.CommandCount() - before; n != 0 {
		t.Fatalf("an observation without reset, retry or refusal sent %d commands", n)
	}
}

// TestRefusalCacheTellsKindsApart: a window limit and a pacing limit of the
// same rate and period are different limits, so a refusal remembered for
// one never answers the other.
func TestRefusalCacheTellsKindsApart(t *testing.T) {
	_, rdb := newMini(t, nil)
	l := New(rdb)
	defer l.Close()
	ctx := context.Background()
	window := srl.Window(1, time.Hour)
	if d, err := l.Allow(ctx, "kinds", window); err != nil || !d.Allowed {
		t.Fatalf("first: %+v, %v", d, err)
	}
	if d, err := l.Allow(ctx, "kinds", window); err != nil || d.Allowed || d.Cause != srl.CauseLimit {
		t.Fatalf("second on the window: %+v, %v; want refused by the limit", d, err)
	}
	if d, err := l.Allow(ctx, "kinds", srl.PerHour(1)); err != nil || !d.Allowed {
		t.Fatalf("pacing 1/h after the window's refusal: %+v, %v; want allowed (its own field)", d, err)
	}
}

// callerMark marks the caller's context in TestLoneDecisionIsSentByItsCaller.
type callerMark struct{}

// scriptContexts is a go-redis hook that records, for each script call,
// whether its context carries callerMark, and holds calls while hold is
// not nil.
type scriptContexts struct {
	mu     sync.Mutex
	marked []bool
	hold   chan struct{}
}

func (*scriptContexts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*scriptContexts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *scriptContexts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			h.mu.Lock()
			h.marked = append(h.marked, ctx.Value(callerMark{}) != nil)
			hold := h.hold
			h.mu.Unlock()
			if hold != nil {
				<-hold
			}
		}
		return next(ctx, cmd)
	}
}

func (h *scriptContexts) calls() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.marked)
}

// TestLoneDecisionIsSentByItsCaller: with a client that honours context
// deadlines, a decision with nothing else of its node waiting or in
// flight is sent on its caller's context (so the caller's values, a
// tracing span say, reach the client's hooks), and decisions arriving
// while it is in flight still go to the workers. A client that ignores
// deadlines always goes through the workers, which keep the budget.
func TestLoneDecisionIsSentByItsCaller(t *testing.T) {
	limit := srl.PerSecond(1000).WithBurst(1000)
	for _, honours := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", honours), func(t *testing.T) {
			_, rdb := newMini(t, &redis.Options{ContextTimeoutEnabled: honours})
			hook := &scriptContexts{}
			rdb.AddHook(hook)
			l := New(rdb, WithDecisionTimeout(5*time.Second))
			ctx := context.WithValue(context.Background(), callerMark{}, true)
			for range 3 {
				if d, err := l.Allow(ctx, "k", limit); err != nil || !d.Allowed {
					t.Fatalf("%+v, %v", d, err)
				}
			}
			if got, want := hook.calls(), []bool{honours, honours, honours}; !slices.Equal(got, want) {
				t.Fatalf("sequential decisions: the caller's context reached %v of the script calls, want %v", got, want)
			}
			if !honours {
				return
			}
			// One decision held in flight; eight more arrive meanwhile.
			hook.mu.Lock()
			hook.marked, hook.hold = nil, make(chan struct{})
			hook.mu.Unlock()
			var wg sync.WaitGroup
			errs := make(chan error, 9)
			decide := func() {
				defer wg.Done()
				if d, err := l.Allow(ctx, "k", limit); err != nil || !d.Allowed {
					errs <- fmt.Errorf("%+v, %v", d, err)
				}
			}
			wg.Add(1)
			go decide()
			eventually(t, 5*time.Second, "the first decision in flight", func() bool { return len(hook.calls()) == 1 })
			for range 8 {
				wg.Add(1)
				go decide()
			}
			eventually(t, 5*time.Second, "nine decisions deciding", func() bool { return l.batcherFor("").deciding.Load() == 9 })
			hook.mu.Lock()
			hold := hook.hold
			hook.hold = nil
			hook.mu.Unlock()
			close(hold)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// The first on its caller's context; the others queued and were
			// sent by the workers (in as many calls as workers took turns).
			got := hook.calls()
			if len(got) < 2 || len(got) > 9 || !got[0] || slices.Contains(got[1:], true) {
				t.Fatalf("script calls (true: on the caller's context) %v, want the lone decision's, then the workers' for the eight that queued", got)
			}
		})
	}
}

// Keys of the same limits, some with a cost in tokens and some without,
// decided by many goroutines at once, share batches and script calls: each
// is decided as itself (a costed key sent as the plain key before it had
// its call's reply rejected, and every key of the call failed with it).
func TestCostedAndPlainKeysShareCalls(t *testing.T) {
	_, rdb := newMini(t, &redis.Options{})
	l := New(rdb)
	t.Cleanup(func() { l.Close() })
	limits := []srl.Limit{srl.PerSecond(1e6)}
	const goroutines, each = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := srl.Request{Key: fmt.Sprint("plain-", g, "-", i), N: 1, Limits: limits}
				if g%2 == 1 {
					r = srl.Request{Key: fmt.Sprint("costed-", g, "-", i), N: 1, Limits: limits, Costs: []srl.Cost{{Unit: "tokens", N: 3}}}
				}
				d, err := l.Acquire(context.Background(), r)
				if err == nil && !d.Allowed {
					err = fmt.Errorf("%s refused: %+v", r.Key, d)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if n := len(errs); n > 0 {
		t.Fatalf("%d of %d decisions failed, the first: %v", n, goroutines*each, <-errs)
	}
}
