package redislimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// fixedRedis starts an in-process Redis (miniredis) whose clock stands
// still, so the examples print the same thing every run. In production,
// pass your own *redis.Client or *redis.ClusterClient.
func fixedRedis() (*redis.Client, func()) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	mr.SetTime(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { _ = rdb.Close(); mr.Close() }
}

func Example() {
	rdb, stop := fixedRedis()
	defer stop()

	limiter := redislimit.New(rdb)
	ctx := context.Background()
	// 2 per second, up to 3 at once: every pod using this Redis shares it.
	limit := srl.PerSecond(2).WithBurst(3)
	for i := 0; i < 4; i++ {
		d, err := limiter.Allow(ctx, "api.example.com", limit)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("allowed=%v remaining=%d retry-after=%v\n", d.Allowed, d.Remaining, d.RetryAfter)
	}
	// Output:
	// allowed=true remaining=2 retry-after=0s
	// allowed=true remaining=1 retry-after=0s
	// allowed=true remaining=0 retry-after=0s
	// allowed=false remaining=0 retry-after=500ms
}

// A response told one pod the server's quota; every pod now spends from
// it, and is refused until the reset once it is gone.
func ExampleLimiter_Observe() {
	rdb, stop := fixedRedis()
	defer stop()

	limiter := redislimit.New(rdb)
	ctx := context.Background()
	// X-RateLimit-Limit: 5000, X-RateLimit-Remaining: 2, reset in 30s.
	err := limiter.Observe(ctx, "api.github.com", srl.Observation{Limit: 5000, Remaining: 2, Reset: 30 * time.Second})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for i := 0; i < 3; i++ {
		d, _ := limiter.Allow(ctx, "api.github.com")
		fmt.Printf("allowed=%v remaining=%d retry-after=%v cause=%v\n", d.Allowed, d.Remaining, d.RetryAfter, d.Cause)
	}
	// Output:
	// allowed=true remaining=1 retry-after=0s cause=none
	// allowed=true remaining=0 retry-after=0s cause=none
	// allowed=false remaining=0 retry-after=30s cause=quota
}

func ExampleLimiter_Status() {
	rdb, stop := fixedRedis()
	defer stop()

	limiter := redislimit.New(rdb)
	ctx := context.Background()
	_ = limiter.Observe(ctx, "api.example.com", srl.Observation{Limit: 100, Remaining: 8, Reset: time.Minute})
	st, err := limiter.Status(ctx, "api.example.com")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("%d of %d left, resets in %v, utilization %.2f\n", st.Remaining, st.Limit, st.ResetAfter, st.Utilization())
	if st.Utilization() > 0.9 {
		fmt.Println("warning: rate limit nearly exhausted")
	}
	// Output:
	// 8 of 100 left, resets in 1m0s, utilization 0.92
	// warning: rate limit nearly exhausted
}

// Wait reserves a slot and sleeps exactly until it: callers are spaced
// instead of retrying in a herd, and a wait past the deadline fails at
// once.
func ExampleLimiter_Wait() {
	rdb, stop := fixedRedis()
	defer stop()

	limiter := redislimit.New(rdb)
	limit := srl.PerMinute(1)
	if err := limiter.Wait(context.Background(), "api.example.com", limit); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("first call admitted at once")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := limiter.Wait(ctx, "api.example.com", limit)
	fmt.Println(err)
	// Output:
	// first call admitted at once
	// smartratelimit: rate limited on "api.example.com" by limit; waiting would exceed the deadline; retry after 1m0s
}
