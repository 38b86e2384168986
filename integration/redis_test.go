package integration

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// TestFiftyGoroutinesBudgetOfTwenty: the script is atomic on a real server
// with real time: exactly the budget is admitted, never more.
func TestFiftyGoroutinesBudgetOfTwenty(t *testing.T) {
	rdb := newClient(t, sharedRedis(t), nil)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(uniquePrefix(t)), redislimit.WithDecisionTimeout(10*time.Second))
	budget := srl.Limit{Rate: 20, Period: time.Hour, Burst: 20}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := l.Allow(context.Background(), "race", budget)
			switch {
			case err != nil:
				t.Error(err)
			case d.Allowed:
				admitted.Add(1)
			default:
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 20 || refused.Load() != 30 {
		t.Fatalf("admitted %d, refused %d; want exactly 20 and 30", admitted.Load(), refused.Load())
	}
}

// commandLog records the commands a client sends.
type commandLog struct {
	mu   sync.Mutex
	cmds []string
}

func (c *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		for _, cmd := range cmds {
			c.cmds = append(c.cmds, cmd.Name())
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}
func (c *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.cmds = append(c.cmds, cmd.Name())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *commandLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.cmds
	c.cmds = nil
	return out
}

// TestNoScriptAfterFlush: after SCRIPT FLUSH the next decision succeeds
// with one EVAL, and the one after is back on EVALSHA.
func TestNoScriptAfterFlush(t *testing.T) {
	rdb := newClient(t, sharedRedis(t), nil)
	log := &commandLog{}
	rdb.AddHook(log)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(uniquePrefix(t)), redislimit.WithDecisionTimeout(5*time.Second))
	ctx := context.Background()
	allow := func(step string) {
		t.Helper()
		if d, err := l.Allow(ctx, "flush", srl.PerSecond(1000).WithBurst(100)); err != nil || !d.Allowed {
			t.Fatalf("%s: %+v, %v", step, d, err)
		}
	}
	allow("warm-up")
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	log.take()
	allow("after SCRIPT FLUSH")
	if got := log.take(); len(got) != 2 || got[0] != "evalsha" || got[1] != "eval" {
		t.Fatalf("after SCRIPT FLUSH sent %v, want [evalsha eval]", got)
	}
	allow("next")
	if got := log.take(); len(got) != 1 || got[0] != "evalsha" {
		t.Fatalf("next decision sent %v, want [evalsha]", got)
	}
}

// TestWrongTypeNamesTheKey: a key of another type at the limiter's name is
// a typed error naming the key, not a panic and not an outage.
func TestWrongTypeNamesTheKey(t *testing.T) {
	rdb := newClient(t, sharedRedis(t), nil)
	prefix := uniquePrefix(t)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(5*time.Second))
	ctx := context.Background()
	if err := rdb.Set(ctx, redislimit.RedisKey(prefix, "squatted"), "not a hash", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["Allow"] = l.Allow(ctx, "squatted", srl.PerSecond(1))
	checks["Observe"] = l.Observe(ctx, "squatted", srl.Observation{RetryAfter: time.Second})
	_, checks["Status"] = l.Status(ctx, "squatted")
	for op, err := range checks {
		var ke *srl.KeyError
		if !errors.As(err, &ke) || ke.Key != "squatted" || !errors.Is(err, srl.ErrWrongType) {
			t.Errorf("%s on a string key: %v, want a *KeyError for \"squatted\" wrapping ErrWrongType", op, err)
		}
	}
}

// TestWaitSpacesCallers: concurrent Waits get reserved, spaced slots on
// the real Redis clock instead of retrying in a herd.
func TestWaitSpacesCallers(t *testing.T) {
	rdb := newClient(t, sharedRedis(t), nil)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(uniquePrefix(t)), redislimit.WithDecisionTimeout(5*time.Second))
	limit := srl.PerSecond(20) // one slot every 50ms
	const callers = 6
	start := time.Now()
	var wg sync.WaitGroup
	done := make(chan time.Duration, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Wait(context.Background(), "spaced", limit); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		}()
	}
	wg.Wait()
	close(done)
	var last time.Duration
	for d := range done {
		last = max(last, d)
	}
	// Six slots 50ms apart: the last one cannot start before 250ms.
	if last < 250*time.Millisecond-5*time.Millisecond {
		t.Fatalf("six Waits on 20/s all returned within %v; the slots were not spaced", last)
	}
}

// TestWaitFailsFastPastDeadline: a wait that cannot end before the
// deadline returns at once, with the time to retry, without sleeping.
func TestWaitFailsFastPastDeadline(t *testing.T) {
	rdb := newClient(t, sharedRedis(t), nil)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(uniquePrefix(t)), redislimit.WithDecisionTimeout(5*time.Second))
	limit := srl.PerMinute(1)
	if err := l.Wait(context.Background(), "deadline", limit); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := l.Wait(ctx, "deadline", limit)
	var le *srl.LimitError
	if !errors.As(err, &le) || !le.Deadline || le.RetryAfter < 55*time.Second || !errors.Is(err, srl.ErrRateLimited) {
		t.Fatalf("Wait past the deadline: %v, want a *LimitError with Deadline and ~60s to retry", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Wait slept until the deadline instead of failing at once")
	}
}

// TestServerTimeOnRealRedis: the default mode reads Redis's clock; a burst
// is admitted at once and the next slot is one interval away.
func TestServerTimeOnRealRedis(t *testing.T) {
	rdb := newClient(t, sharedRedis(t), nil)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(uniquePrefix(t)), redislimit.WithDecisionTimeout(5*time.Second))
	ctx := context.Background()
	limit := srl.PerMinute(60).WithBurst(3)
	for i := 0; i < 3; i++ {
		if d, err := l.Allow(ctx, "server-time", limit); err != nil || !d.Allowed {
			t.Fatalf("burst admission %d: %+v, %v", i, d, err)
		}
	}
	d, err := l.Allow(ctx, "server-time", limit)
	if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second || d.Cause != srl.CauseLimit {
		t.Fatalf("after the burst: %+v, %v; want a refusal for under one second", d, err)
	}
}
