package redislimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
	"github.com/smartratelimit/smartratelimit/internal/scripts"
)

// events records degraded transitions.
type events struct {
	mu  sync.Mutex
	log []bool
}

func (e *events) record(degraded bool, _ error) {
	e.mu.Lock()
	e.log = append(e.log, degraded)
	e.mu.Unlock()
}

func (e *events) get() []bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bool(nil), e.log...)
}

// evalCounter counts the script calls a client sends.
type evalCounter struct{ n atomic.Int64 }

func (c *evalCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *evalCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if n := cmd.Name(); n == "evalsha" || n == "eval" {
				c.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}
func (c *evalCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRedisDownAtStart(t *testing.T) {
	mr := miniredis.RunT(t)
	addr := mr.Addr()
	mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	limit := srl.PerSecond(1)

	ev := &events{}
	l := New(rdb, WithDecisionTimeout(100*time.Millisecond), WithOnDegraded(ev.record))
	for i := 0; i < 5; i++ {
		start := time.Now()
		d, err := l.Allow(ctx, "k", limit)
		if err != nil || !d.Degraded || time.Since(start) > time.Second {
			t.Fatalf("decision %d with Redis down: %+v, %v after %v", i, d, err, time.Since(start))
		}
		if d.Allowed != (i == 0) {
			t.Fatalf("decision %d: the local twin must admit exactly one of 1/s at once: %+v", i, d)
		}
	}
	if got := ev.get(); len(got) != 1 || !got[0] {
		t.Fatalf("degraded events %v, want exactly one 'degraded'", got)
	}

	if d, err := New(rdb, WithFailurePolicy(FailOpen)).Allow(ctx, "k", limit); err != nil || !d.Allowed || !d.Degraded {
		t.Fatalf("fail open: %+v, %v", d, err)
	}
	if _, err := New(rdb, WithFailurePolicy(FailClosed)).Allow(ctx, "k", limit); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fail closed: %v, want ErrUnavailable", err)
	}
}

func TestOpenBreakerSkipsRedis(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
	counter := &evalCounter{}
	rdb.AddHook(counter)
	mr.SetError("LOADING Redis is loading the dataset in memory")
	l := New(rdb, WithDecisionTimeout(time.Second), WithBreaker(3, time.Hour, time.Hour))
	for i := 0; i < 100; i++ {
		if d, err := l.Allow(context.Background(), "k", srl.PerSecond(1000).WithBurst(1000)); err != nil || !d.Degraded {
			t.Fatalf("decision %d: %+v, %v", i, d, err)
		}
	}
	if n := counter.n.Load(); n != 3 {
		t.Fatalf("%d script calls reached Redis; the breaker must open after 3 and stop calling", n)
	}
	if !l.Degraded() {
		t.Fatal("Degraded() is false with the breaker open")
	}
}

func TestRecoveryAndFlapping(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
	counter := &evalCounter{}
	rdb.AddHook(counter)
	ev := &events{}
	probe := 30 * time.Millisecond
	l := New(rdb, WithDecisionTimeout(time.Second), WithBreaker(1, probe, 4*probe), WithOnDegraded(ev.record))
	ctx := context.Background()
	limit := srl.PerSecond(10_000).WithBurst(10_000)
	allow := func() srl.Decision {
		d, err := l.Allow(ctx, "flap", limit)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	const outages = 5
	for i := 0; i < outages; i++ {
		mr.SetError("LOADING Redis is loading the dataset in memory")
		eventually(t, time.Second, "degraded", func() bool { return allow().Degraded })
		// While out, many decisions but few probes.
		before, probesBefore := counter.n.Load(), l.Probes()
		outStart := time.Now()
		for j := 0; j < 200; j++ {
			allow()
		}
		time.Sleep(3 * probe)
		allow()
		outFor := time.Since(outStart)
		calls, probes := counter.n.Load()-before, l.Probes()-probesBefore
		if calls != probes || probes > int64(outFor/probe)+1 {
			t.Fatalf("outage %d: %d script calls and %d probes in %v; want only probes, at most one per %v", i, calls, probes, outFor, probe)
		}
		mr.SetError("")
		back := time.Now()
		eventually(t, 4*probe+time.Second, "back on Redis", func() bool { return !allow().Degraded })
		if since := time.Since(back); since > 4*probe+time.Second {
			t.Fatalf("back on Redis after %v", since)
		}
	}
	got := ev.get()
	if len(got) != 2*outages {
		t.Fatalf("%d transitions reported for %d outages: %v", len(got), outages, got)
	}
	for i, degraded := range got {
		if degraded != (i%2 == 0) {
			t.Fatalf("transitions out of order: %v", got)
		}
	}
}

// TestConcurrentTransitionsReportedOnce: many goroutines failing and
// recovering at once still yield one event per transition.
func TestConcurrentTransitionsReportedOnce(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
	ev := &events{}
	l := New(rdb, WithDecisionTimeout(time.Second), WithBreaker(1, 5*time.Millisecond, 5*time.Millisecond), WithOnDegraded(ev.record))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := l.Allow(context.Background(), "herd", srl.PerSecond(1_000_000).WithBurst(1_000_000)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 4; i++ {
		mr.SetError("MASTERDOWN Link with MASTER is down")
		eventually(t, time.Second, "degraded", l.Degraded)
		mr.SetError("")
		eventually(t, time.Second, "recovered", func() bool { return !l.Degraded() })
	}
	stop.Store(true)
	wg.Wait()
	got := ev.get()
	if len(got) != 8 {
		t.Fatalf("%d transitions for 4 outages: %v", len(got), got)
	}
	for i, degraded := range got {
		if degraded != (i%2 == 0) {
			t.Fatalf("transitions out of order: %v", got)
		}
	}
}

func TestReplicasShare(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
	mr.SetError("LOADING Redis is loading the dataset in memory")
	l := New(rdb, WithReplicas(4), WithDecisionTimeout(time.Second))
	ctx := context.Background()
	limit := srl.PerSecond(8).WithBurst(8)
	admitted := 0
	for i := 0; i < 20; i++ {
		if d, _ := l.Allow(ctx, "shared", limit); d.Allowed {
			admitted++
		}
	}
	// A quarter of the burst of 8; the next slot is 4/8s = 500ms away.
	if admitted != 2 {
		t.Fatalf("degraded with 4 replicas admitted %d at once of a burst of 8, want 2", admitted)
	}
	d, _ := l.Allow(ctx, "shared", limit)
	if d.RetryAfter < 400*time.Millisecond || d.RetryAfter > 500*time.Millisecond {
		t.Fatalf("next local slot in %v, want ~500ms (a quarter of the rate)", d.RetryAfter)
	}
	// A window's share is a quarter of its rate, at once; a longer period
	// instead would still let the whole window through in a burst.
	window := srl.Window(10, time.Hour)
	admitted = 0
	for i := 0; i < 20; i++ {
		if d, _ := l.Allow(ctx, "shared-window", window); d.Allowed {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("degraded with 4 replicas admitted %d of a window of 10, want 2", admitted)
	}
	// A request may still cost what the limit allows.
	if d, err := l.AllowN(ctx, "shared-window-n", 5, window); err != nil || !d.Allowed {
		t.Fatalf("a cost of 5 on a window of 10 shared by 4: %+v, %v", d, err)
	}
}

// TestTwinStartsFromLastSharedState: when Redis fails, the twin continues
// from the quota and block this process last saw, in its share.
func TestTwinStartsFromLastSharedState(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
		l := New(rdb, WithReplicas(replicas), WithDecisionTimeout(time.Second))
		ctx := context.Background()
		if err := l.Observe(ctx, "q", srl.Observation{Limit: 100, Remaining: 8, Reset: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if d, err := l.Allow(ctx, "q"); err != nil || !d.Allowed || d.Degraded || d.Remaining != 7 {
			t.Fatalf("healthy: %+v, %v", d, err)
		}
		mr.SetError("LOADING Redis is loading the dataset in memory")
		admitted := 0
		for i := 0; i < 20; i++ {
			d, err := l.Allow(ctx, "q")
			if err != nil || !d.Degraded {
				t.Fatalf("outage: %+v, %v", d, err)
			}
			if d.Allowed {
				admitted++
			} else if d.Cause != srl.CauseQuota {
				t.Fatalf("outage refusal by %v, want quota", d.Cause)
			}
		}
		if want := 7 / replicas; admitted != want {
			t.Fatalf("replicas=%d: the twin admitted %d after the fleet had 7 left, want %d", replicas, admitted, want)
		}
	}

	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
	l := New(rdb, WithDecisionTimeout(time.Second))
	ctx := context.Background()
	if err := l.Observe(ctx, "b", srl.Observation{RetryAfter: 30 * time.Second, Limited: true}); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Allow(ctx, "b"); d.Allowed || d.Cause != srl.CauseBlocked {
		t.Fatalf("healthy and blocked: %+v", d)
	}
	mr.SetError("LOADING Redis is loading the dataset in memory")
	// A request the refusal cache has not seen, so that it reaches Redis.
	d, _ := l.Allow(ctx, "b", srl.PerSecond(100))
	if d.Allowed || !d.Degraded || d.Cause != srl.CauseBlocked || d.RetryAfter < 29*time.Second {
		t.Fatalf("the block must survive into the outage: %+v", d)
	}
}

func TestObserveAndStatusWhileDegraded(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
	mr.SetError("LOADING Redis is loading the dataset in memory")
	ctx := context.Background()
	l := New(rdb, WithDecisionTimeout(time.Second))
	if err := l.Observe(ctx, "k", srl.Observation{RetryAfter: 10 * time.Second}); err != nil {
		t.Fatalf("observe while degraded: %v", err)
	}
	if d, _ := l.Allow(ctx, "k"); d.Allowed || d.Cause != srl.CauseBlocked {
		t.Fatalf("the observation must reach the twin: %+v", d)
	}
	st, err := l.Status(ctx, "k")
	if err != nil || !st.Degraded || st.BlockedFor < 9*time.Second {
		t.Fatalf("status while degraded: %+v, %v", st, err)
	}
	closed := New(rdb, WithDecisionTimeout(time.Second), WithFailurePolicy(FailClosed))
	if err := closed.Observe(ctx, "k", srl.Observation{RetryAfter: time.Second}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fail closed observe: %v", err)
	}
	if _, err := closed.Status(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fail closed status: %v", err)
	}
	if err := New(rdb, WithFailurePolicy(FailOpen)).Observe(ctx, "k", srl.Observation{RetryAfter: time.Second}); err != nil {
		t.Fatalf("fail open observe: %v", err)
	}
	if err := l.Reset(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("reset while Redis is down: %v, want ErrUnavailable", err)
	}
}

func TestCallerCancellationsDoNotOpenTheBreaker(t *testing.T) {
	_, rdb := newMini(t, nil)
	ev := &events{}
	l := New(rdb, WithBreaker(1, time.Hour, time.Hour), WithOnDegraded(ev.record))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 10; i++ {
		if _, err := l.Allow(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v", err)
		}
	}
	if l.Degraded() || len(ev.get()) != 0 {
		t.Fatal("cancelled callers opened the breaker")
	}
}

func TestScriptFlushIsNotAnOutage(t *testing.T) {
	_, rdb := newMini(t, nil)
	ev := &events{}
	l := New(rdb, WithBreaker(1, time.Hour, time.Hour), WithOnDegraded(ev.record), WithDecisionTimeout(time.Second))
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if d, err := l.Allow(ctx, "k", srl.PerSecond(100).WithBurst(100)); err != nil || d.Degraded {
			t.Fatalf("after SCRIPT FLUSH: %+v, %v", d, err)
		}
	}
	if len(ev.get()) != 0 {
		t.Fatal("NOSCRIPT opened the breaker")
	}
}

// TestStateLossOverAdmitsAtMostOneBurst: losing a key's state (FLUSHALL,
// eviction, a failover that loses writes) restarts it full: at most one
// extra burst. (The refusal cache of the process that saw the refusals
// keeps refusing until they would have ended, so it admits none here; a
// process without it admits the burst.)
func TestStateLossOverAdmitsAtMostOneBurst(t *testing.T) {
	mr, rdb := newMini(t, nil)
	mr.SetTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(rdb, WithDecisionTimeout(time.Second))
	ctx := context.Background()
	limit := srl.PerMinute(10).WithBurst(5)
	count := func() int {
		n := 0
		for i := 0; i < 50; i++ {
			if d, _ := l.Allow(ctx, "lost", limit); d.Allowed {
				n++
			}
		}
		return n
	}
	if n := count(); n != 5 {
		t.Fatalf("first burst %d, want 5", n)
	}
	mr.FlushAll()
	if n := count(); n > 5 {
		t.Fatalf("after FLUSHALL admitted %d more, at most one burst (5)", n)
	}
	fresh := New(rdb, WithDecisionTimeout(time.Second))
	admitted := 0
	for i := 0; i < 50; i++ {
		if d, _ := fresh.Allow(ctx, "lost", limit); d.Allowed {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("a process without cached refusals admitted %d after FLUSHALL, want exactly one burst (5)", admitted)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1, ReadTimeout: 2 * time.Second})
	var hang atomic.Bool
	mr.Server().SetPreHook(func(_ *server.Peer, cmd string, _ ...string) bool {
		if hang.Load() && strings.EqualFold(cmd, "evalsha") {
			time.Sleep(300 * time.Millisecond)
		}
		return false
	})
	base := runtime.NumGoroutine()
	l := New(rdb, WithDecisionTimeout(20*time.Millisecond))
	hang.Store(true)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = l.Allow(context.Background(), "k", srl.PerSecond(1))
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := l.inflight.Load(); n != 0 {
		t.Fatalf("Close returned with %d calls still in flight", n)
	}
	_ = rdb.Close()
	eventually(t, 5*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base })
}

// TestCloseUnderLoad closes a limiter while callers keep deciding: each
// call ends with a decision or ErrClosedLimiter (never a fallback decision
// or a timeout), and no batch worker outlives the limiter.
func TestCloseUnderLoad(t *testing.T) {
	_, rdb := newMini(t, nil)
	base := runtime.NumGoroutine()
	l := New(rdb, WithDecisionTimeout(5*time.Second))
	var wg sync.WaitGroup
	var decided, closed atomic.Int64
	start := make(chan struct{})
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < 200; j++ {
				d, err := l.Acquire(context.Background(), srl.Request{Key: fmt.Sprint("k", j%7), N: 1, Limits: []srl.Limit{srl.PerSecond(1000)}})
				switch {
				case errors.Is(err, ErrClosedLimiter):
					closed.Add(1)
					return
				case err != nil:
					t.Errorf("call racing Close: %v", err)
					return
				case d.Degraded:
					t.Errorf("call racing Close was decided locally: %+v", d)
					return
				}
				decided.Add(1)
			}
		}()
	}
	close(start)
	eventually(t, 5*time.Second, "some decisions made", func() bool { return decided.Load() > 50 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if decided.Load()+closed.Load() == 0 {
		t.Fatal("no call finished")
	}
	_ = rdb.Close() // miniredis serves each connection on a goroutine of this process
	eventually(t, 5*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base })
}

// TestObserverHearsDecisionsErrorsAndTransitions: a bare limiter feeds an
// observer: every decision, every failed call by kind, each degraded
// transition once.
func TestObserverHearsDecisionsErrorsAndTransitions(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{MaxRetries: -1})
	var mu sync.Mutex
	counts := map[string]int{}
	obs := srl.ObserverFunc(func(e srl.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Kind {
		case srl.EventDecided:
			counts[map[bool]string{true: "allowed", false: "refused"}[e.Allowed]+map[bool]string{true: "_degraded", false: ""}[e.Degraded]]++
		case srl.EventBackendError:
			counts["error_"+e.ErrorKind]++
		case srl.EventDegradedChange:
			counts[map[bool]string{true: "degraded", false: "recovered"}[e.Degraded]]++
		}
	})
	l := New(rdb, WithObserver(obs), WithBreaker(1, 10*time.Millisecond, 10*time.Millisecond), WithDecisionTimeout(time.Second))
	ctx := context.Background()
	limit := srl.PerMinute(1)
	_, _ = l.Allow(ctx, "k", limit)
	_, _ = l.Allow(ctx, "k", limit)
	mr.SetError("LOADING Redis is loading the dataset in memory")
	_, _ = l.Allow(ctx, "k2", limit) // "k" would be refused from the cache, without asking Redis
	mr.SetError("")
	eventually(t, time.Second, "recovered", func() bool { _, _ = l.Allow(ctx, "other", limit); return !l.Degraded() })
	mu.Lock()
	defer mu.Unlock()
	if counts["allowed"] < 2 || counts["refused"] < 1 || counts["allowed_degraded"] < 1 ||
		counts["error_unavailable"] != 1 || counts["degraded"] != 1 || counts["recovered"] != 1 {
		t.Fatalf("events %v", counts)
	}
}

// Close waits at most closeWait in all, not closeWait for each thing still
// in flight: here a decision's batch and an observation, both stuck on a
// server that accepts connections and never answers.
func TestCloseWaitsOnceAgainstABlackHole(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: 4 * closeWait, MaxRetries: -1, Protocol: 2})
	t.Cleanup(func() { rdb.Close() })
	l := New(rdb, WithDecisionTimeout(20*time.Millisecond))
	ctx := context.Background()
	if d, err := l.Allow(ctx, "k", srl.PerSecond(10)); err != nil || !d.Degraded {
		t.Fatalf("a decision against the black hole: %+v, %v; want one from the twin", d, err)
	}
	_ = l.Observe(ctx, "k", srl.Observation{RetryAfter: time.Second})
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > closeWait+time.Second {
		t.Fatalf("Close took %v; it waits at most %v", took, closeWait)
	}
}

// A decision already sent when Close is called is delivered, not refused
// with ErrClosedLimiter: Redis has spent it, and a caller told the limiter
// was closed would not send the request it paid for.
func TestCloseDeliversTheDecisionsInFlight(t *testing.T) {
	mr, rdb := newMini(t, &redis.Options{})
	inRedis, release := make(chan struct{}, 1), make(chan struct{})
	mr.Server().SetPreHook(func(_ *server.Peer, cmd string, _ ...string) bool {
		if strings.EqualFold(cmd, "evalsha") {
			select {
			case inRedis <- struct{}{}:
				<-release
			default:
			}
		}
		return false
	})
	l := New(rdb, WithDecisionTimeout(10*time.Second))
	hourly := srl.PerHour(1)
	type outcome struct {
		d   srl.Decision
		err error
	}
	decided := make(chan outcome, 1)
	go func() {
		d, err := l.Allow(context.Background(), "k", hourly)
		decided <- outcome{d, err}
	}()
	<-inRedis
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	l.batchers.Range(func(_, b any) bool { <-b.(*batcher).stop; return true })
	close(release)
	o := <-decided
	<-closed
	if o.err != nil || !o.d.Allowed {
		t.Fatalf("the decision Redis made while Close waited: %+v, %v; want it admitted", o.d, o.err)
	}
	next := New(rdb)
	t.Cleanup(func() { next.Close() })
	if d, err := next.Allow(context.Background(), "k", hourly); err != nil || d.Allowed {
		t.Fatalf("the hour's one request, spent: the next decision got %+v, %v", d, err)
	}
}

// A stopped batcher (a node retired, the limiter closed) ends every later
// decision with the stop's error, however many: none waits in its queue,
// which no worker reads any more, to fill it.
func TestStoppedBatcherQueuesNothing(t *testing.T) {
	_, rdb := newMini(t, &redis.Options{})
	b := newBatcher(scripts.NewRunner(rdb, nil), time.Second, false)
	b.close(time.Second, errNodeRetired)
	all, nFixed := keystate.CompileRequest(nil, []srl.Limit{srl.PerSecond(10)}, nil)
	it := keystate.Item{N: 1, All: all, NFixed: nFixed}
	for i := 0; i < queueSize+10; i++ {
		if _, err := b.acquire(context.Background(), "srl:{k}", &it); !errors.Is(err, errNodeRetired) {
			t.Fatalf("decision %d on a retired node: %v, want errNodeRetired", i, err)
		}
	}
}
