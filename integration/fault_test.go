package integration

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/integration/internal/faultproxy"
	"github.com/smartratelimit/smartratelimit/integration/internal/redisserver"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// The fault tests run with a 100ms decision budget. A decision "within the
// budget" is checked against budget + slack: the slack absorbs scheduling
// on a loaded two-core machine under the race detector, and is still far
// below what a missed budget costs (the client's 3s read timeout, or
// seconds of dial retries).
const (
	budget = 100 * time.Millisecond
	slack  = 250 * time.Millisecond
)

// transitions records degraded events.
type transitions struct {
	mu  sync.Mutex
	log []bool
}

func (tr *transitions) record(degraded bool, _ error) {
	tr.mu.Lock()
	tr.log = append(tr.log, degraded)
	tr.mu.Unlock()
}

func (tr *transitions) get() []bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]bool(nil), tr.log...)
}

func (tr *transitions) wantAlternating(t *testing.T, outages int) {
	t.Helper()
	got := tr.get()
	if len(got) != 2*outages {
		t.Fatalf("%d transitions for %d outages: %v", len(got), outages, got)
	}
	for i, d := range got {
		if d != (i%2 == 0) {
			t.Fatalf("transitions out of order: %v", got)
		}
	}
}

// scriptCalls counts EVALSHA/EVAL sent by a client.
type scriptCalls struct{ n atomic.Int64 }

func (c *scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if n := cmd.Name(); n == "evalsha" || n == "eval" {
				c.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}
func (c *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

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

// load runs goroutines calling Allow until stop, recording every decision.
type load struct {
	admitted, degradedAdmitted, errs atomic.Int64
	slowest                          atomic.Int64
	firstErr                         atomic.Value
	stop                             atomic.Bool
	wg                               sync.WaitGroup
}

func startLoad(l *redislimit.Limiter, goroutines int, key string, limit srl.Limit) *load {
	ld := &load{}
	for i := 0; i < goroutines; i++ {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for !ld.stop.Load() {
				start := time.Now()
				d, err := l.Allow(context.Background(), key, limit)
				took := time.Since(start)
				for {
					old := ld.slowest.Load()
					if int64(took) <= old || ld.slowest.CompareAndSwap(old, int64(took)) {
						break
					}
				}
				switch {
				case err != nil:
					ld.errs.Add(1)
					ld.firstErr.CompareAndSwap(nil, err)
				case d.Allowed && d.Degraded:
					ld.degradedAdmitted.Add(1)
				case d.Allowed:
					ld.admitted.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return ld
}

func (ld *load) halt() { ld.stop.Store(true); ld.wg.Wait() }

// TestRedisDownAtStart: nothing listens at the address. Construction
// succeeds, and the first decisions come from the local twin within the
// budget; the degraded event fires once.
func TestRedisDownAtStart(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(redisserver.FreePort(t))
	rdb := newClient(t, addr, nil)
	tr := &transitions{}
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(budget), redislimit.WithOnDegraded(tr.record))
	defer l.Close()
	for i := 0; i < 10; i++ {
		start := time.Now()
		d, err := l.Allow(context.Background(), "down", srl.PerSecond(1))
		if err != nil || !d.Degraded || time.Since(start) > budget+slack {
			t.Fatalf("decision %d with nothing listening: %+v, %v after %v", i, d, err, time.Since(start))
		}
	}
	if got := tr.get(); len(got) != 1 || !got[0] {
		t.Fatalf("transitions %v, want one 'degraded'", got)
	}
	if _, err := redislimit.New(rdb, redislimit.WithFailurePolicy(redislimit.FailClosed), redislimit.WithDecisionTimeout(budget)).
		Allow(context.Background(), "down", srl.PerSecond(1)); !errors.Is(err, redislimit.ErrUnavailable) {
		t.Fatalf("fail closed with nothing listening: %v", err)
	}
}

// TestHardOutageMidTraffic kills the server under load from many
// goroutines: no caller sees an error, no decision outlasts the budget,
// Redis sees no calls but probes while the breaker is open, the process
// admits no more than its share of the limit, and it is back on Redis soon
// after the server returns.
func TestHardOutageMidTraffic(t *testing.T) {
	srv := ownRedis(t)
	rdb := newClient(t, srv.Addr, nil)
	calls := &scriptCalls{}
	rdb.AddHook(calls)
	tr := &transitions{}
	const replicas = 4
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(budget), redislimit.WithReplicas(replicas),
		redislimit.WithOnDegraded(tr.record))
	defer l.Close()
	limit := srl.Limit{Rate: 400, Period: time.Second, Burst: 40}

	ld := startLoad(l, 32, "outage", limit)
	time.Sleep(300 * time.Millisecond)
	srv.Kill()
	eventually(t, 2*time.Second, "breaker open", l.Degraded)
	// Calls allowed before the breaker opened may still be on their way to
	// the socket; each ends within the decision budget.
	time.Sleep(2 * budget)
	outStart, callsAtOpen, probesAtOpen := time.Now(), calls.n.Load(), l.Probes()
	degradedBefore := ld.degradedAdmitted.Load()
	time.Sleep(1500 * time.Millisecond)
	outFor := time.Since(outStart)
	degradedDuring := ld.degradedAdmitted.Load() - degradedBefore
	callsDuring, probesDuring := calls.n.Load()-callsAtOpen, l.Probes()-probesAtOpen

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	eventually(t, redislimit.DefaultProbeMax+time.Second, "back on Redis", func() bool { return !l.Degraded() })
	t.Logf("back on Redis %v after the restart", time.Since(back))
	ld.halt()

	if n := ld.errs.Load(); n != 0 {
		t.Fatalf("%d callers saw errors under the default policy; first: %v", n, ld.firstErr.Load())
	}
	if slowest := time.Duration(ld.slowest.Load()); slowest > budget+slack {
		t.Fatalf("slowest decision %v, budget %v", slowest, budget)
	}
	if callsDuring > probesDuring {
		t.Fatalf("%d script calls reached Redis with the breaker open, but only %d probes were made", callsDuring, probesDuring)
	}
	// The local share: rate/replicas over the outage plus burst/replicas.
	share := float64(limit.Rate)/replicas*outFor.Seconds() + float64(limit.Burst)/replicas + 1
	if float64(degradedDuring) > share {
		t.Fatalf("admitted %d locally in %v; the share of %v over 1/%d replicas allows %.0f", degradedDuring, outFor, limit, replicas, share)
	}
	if degradedDuring == 0 {
		t.Fatal("nothing admitted during the outage: the fallback did not serve")
	}
	tr.wantAlternating(t, 1)
}

// TestBlackholedRedis: the server stops answering but keeps connections
// open (a partition). Decisions still return within the budget, with and
// without ContextTimeoutEnabled on the client.
func TestBlackholedRedis(t *testing.T) {
	srv := ownRedis(t)
	for _, ctxTimeouts := range []bool{false, true} {
		t.Run(map[bool]string{false: "client ignores deadlines", true: "client honours deadlines"}[ctxTimeouts], func(t *testing.T) {
			base := runtime.NumGoroutine()
			proxy := faultproxy.Start(t, srv.Addr)
			rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, ContextTimeoutEnabled: ctxTimeouts, ReadTimeout: time.Second})
			l := redislimit.New(rdb, redislimit.WithDecisionTimeout(budget))
			ctx := context.Background()
			limit := srl.PerSecond(1000).WithBurst(1000) // never refused, so every call reaches Redis
			if d, err := l.Allow(ctx, "hole", limit); err != nil || d.Degraded {
				t.Fatalf("healthy: %+v, %v", d, err)
			}
			proxy.Set(faultproxy.Blackhole)
			for i := 0; i < 20; i++ {
				start := time.Now()
				d, err := l.Allow(ctx, "hole", limit)
				if err != nil || !d.Degraded || time.Since(start) > budget+slack {
					t.Fatalf("decision %d into a black hole: %+v, %v after %v", i, d, err, time.Since(start))
				}
			}
			proxy.Set(faultproxy.Pass)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			_ = rdb.Close()
			proxy.Close()
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > base {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestClientPause: CLIENT PAUSE makes the server hold every command; the
// limiter degrades within the budget and returns when the pause ends.
func TestClientPause(t *testing.T) {
	srv := ownRedis(t)
	rdb := newClient(t, srv.Addr, &redis.Options{ReadTimeout: 3 * time.Second})
	admin := newClient(t, srv.Addr, nil)
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(budget), redislimit.WithBreaker(1, 100*time.Millisecond, 200*time.Millisecond))
	defer l.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		start := time.Now()
		d, err := l.Allow(ctx, "paused", srl.PerSecond(1000).WithBurst(1000))
		if err != nil || !d.Degraded || time.Since(start) > budget+slack {
			t.Fatalf("decision %d during CLIENT PAUSE: %+v, %v after %v", i, d, err, time.Since(start))
		}
	}
	eventually(t, 5*time.Second, "back after the pause", func() bool {
		d, err := l.Allow(ctx, "paused", srl.PerSecond(1000).WithBurst(1000))
		return err == nil && !d.Degraded
	})
}

// TestPoolExhaustion: with the only connection held, a decision meets a
// pool timeout, which degrades it; a caller that gives up while waiting
// for a connection gets its own error and does not open the breaker.
func TestPoolExhaustion(t *testing.T) {
	srv := ownRedis(t)
	rdb := newClient(t, srv.Addr, &redis.Options{PoolSize: 1, PoolTimeout: 30 * time.Millisecond, ReadTimeout: 3 * time.Second})
	ctx := context.Background()
	hogged := make(chan struct{})
	go func() {
		close(hogged)
		_ = rdb.BLPop(ctx, 800*time.Millisecond, "nothing-ever-arrives").Err()
	}()
	<-hogged
	time.Sleep(50 * time.Millisecond)

	caller, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	patient := redislimit.New(rdb, redislimit.WithDecisionTimeout(time.Second), redislimit.WithBreaker(1, time.Hour, time.Hour))
	if _, err := patient.Allow(caller, "pool", srl.PerSecond(10)); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redislimit.ErrUnavailable) {
		t.Fatalf("caller deadline while waiting for a connection: %v", err)
	}
	if patient.Degraded() {
		t.Fatal("a caller's deadline opened the breaker")
	}

	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(budget))
	start := time.Now()
	d, err := l.Allow(ctx, "pool", srl.PerSecond(10))
	if err != nil || !d.Degraded || time.Since(start) > budget+slack {
		t.Fatalf("decision with the pool exhausted: %+v, %v after %v", d, err, time.Since(start))
	}
	// go-redis retries pool timeouts itself; without retries the pool
	// timeout, not the budget, is what the caller sees.
	noRetry := newClient(t, srv.Addr, &redis.Options{PoolSize: 1, PoolTimeout: 30 * time.Millisecond, MaxRetries: -1})
	go func() { _ = noRetry.BLPop(ctx, 800*time.Millisecond, "nothing-ever-arrives").Err() }()
	time.Sleep(50 * time.Millisecond)
	closed := redislimit.New(noRetry, redislimit.WithDecisionTimeout(budget), redislimit.WithFailurePolicy(redislimit.FailClosed))
	if _, err := closed.Allow(ctx, "pool", srl.PerSecond(10)); !errors.Is(err, redis.ErrPoolTimeout) || !errors.Is(err, redislimit.ErrUnavailable) {
		t.Fatalf("fail closed with the pool exhausted: %v, want ErrUnavailable wrapping redis.ErrPoolTimeout", err)
	}
}

// TestFlappingRedis kills and restarts the server repeatedly: each outage
// and each recovery is reported exactly once, in order, and probes stay
// bounded.
func TestFlappingRedis(t *testing.T) {
	srv := ownRedis(t)
	rdb := newClient(t, srv.Addr, nil)
	tr := &transitions{}
	probe := 50 * time.Millisecond
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(budget), redislimit.WithBreaker(1, probe, 4*probe),
		redislimit.WithOnDegraded(tr.record))
	defer l.Close()
	ld := startLoad(l, 8, "flap", srl.PerSecond(100_000).WithBurst(100_000))
	const outages = 3
	for i := 0; i < outages; i++ {
		time.Sleep(150 * time.Millisecond)
		srv.Kill()
		eventually(t, 2*time.Second, "degraded", l.Degraded)
		probesBefore, outStart := l.Probes(), time.Now()
		time.Sleep(400 * time.Millisecond)
		if p, bound := l.Probes()-probesBefore, int64(time.Since(outStart)/probe)+1; p > bound {
			t.Fatalf("outage %d: %d probes in %v, at most %d expected", i, p, time.Since(outStart), bound)
		}
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 4*probe+time.Second, "recovered", func() bool { return !l.Degraded() })
	}
	ld.halt()
	if n := ld.errs.Load(); n != 0 {
		t.Fatalf("%d errors while flapping; first: %v", n, ld.firstErr.Load())
	}
	tr.wantAlternating(t, outages)
}

// TestScriptFlushUnderLoad: NOSCRIPT is recovered inside the call and is
// never an outage.
func TestScriptFlushUnderLoad(t *testing.T) {
	srv := ownRedis(t)
	rdb := newClient(t, srv.Addr, nil)
	admin := newClient(t, srv.Addr, nil)
	tr := &transitions{}
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(time.Second), redislimit.WithBreaker(1, time.Hour, time.Hour),
		redislimit.WithOnDegraded(tr.record))
	defer l.Close()
	ld := startLoad(l, 8, "flush", srl.PerSecond(100_000).WithBurst(100_000))
	for i := 0; i < 20; i++ {
		if err := admin.ScriptFlush(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ld.halt()
	if ld.errs.Load() != 0 || ld.degradedAdmitted.Load() != 0 || len(tr.get()) != 0 {
		t.Fatalf("SCRIPT FLUSH caused %d errors, %d degraded decisions, transitions %v", ld.errs.Load(), ld.degradedAdmitted.Load(), tr.get())
	}
	if ld.admitted.Load() == 0 {
		t.Fatal("nothing was admitted")
	}
}

// TestAuthFailureSurfaces: a server that rejects our credentials is a
// configuration error, returned to the caller, never hidden behind the
// fallback.
func TestAuthFailureSurfaces(t *testing.T) {
	srv := ownRedis(t, "--requirepass", "right-password")
	rdb := newClient(t, srv.Addr, &redis.Options{Password: "wrong-password"})
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(time.Second))
	defer l.Close()
	d, err := l.Allow(context.Background(), "auth", srl.PerSecond(1))
	if !errors.Is(err, redislimit.ErrMisconfigured) || d.Degraded || l.Degraded() {
		t.Fatalf("wrong password: %+v, %v; want ErrMisconfigured and no degradation", d, err)
	}
}

// TestFlushAllMidRun: losing every key's state over-admits at most one
// burst per key.
func TestFlushAllMidRun(t *testing.T) {
	srv := ownRedis(t)
	rdb := newClient(t, srv.Addr, nil)
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(time.Second))
	defer l.Close()
	ctx := context.Background()
	limit := srl.PerHour(10).WithBurst(4)
	keys := []string{"a", "b", "c"}
	spend := func() int {
		n := 0
		for _, k := range keys {
			for i := 0; i < 20; i++ {
				if d, err := l.Allow(ctx, k, limit); err != nil {
					t.Fatal(err)
				} else if d.Allowed {
					n++
				}
			}
		}
		return n
	}
	if n := spend(); n != 4*len(keys) {
		t.Fatalf("first bursts admitted %d, want %d", n, 4*len(keys))
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n := spend(); n > 4*len(keys) {
		t.Fatalf("after FLUSHALL admitted %d more, at most one burst per key (%d) allowed", n, 4*len(keys))
	}
}
