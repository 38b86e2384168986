package fallback_test

import (
	"context"
	"fmt"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
)

// The in-memory store on its own is a limiter for one process. A clock of
// your own (here one that only moves when told) makes it deterministic in
// tests; by default it follows the monotonic clock.
func Example() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	store := fallback.New(fallback.WithClock(func() time.Time { return now }))
	ctx := context.Background()

	limit := srl.PerSecond(2).WithBurst(3) // 2 per second, up to 3 at once
	for i := 0; i < 4; i++ {
		d, err := store.Allow(ctx, "api.example.com", limit)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("allowed=%v remaining=%d retry-after=%v\n", d.Allowed, d.Remaining, d.RetryAfter)
	}
	now = now.Add(500 * time.Millisecond) // one emission interval later
	d, _ := store.Allow(ctx, "api.example.com", limit)
	fmt.Printf("after 500ms: allowed=%v\n", d.Allowed)
	// Output:
	// allowed=true remaining=2 retry-after=0s
	// allowed=true remaining=1 retry-after=0s
	// allowed=true remaining=0 retry-after=0s
	// allowed=false remaining=0 retry-after=500ms
	// after 500ms: allowed=true
}

// What a response said about the server's quota (X-RateLimit-Limit: 100,
// X-RateLimit-Remaining: 2, reset in 30s) is spent from until the reset.
func ExampleStore_Observe() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	store := fallback.New(fallback.WithClock(func() time.Time { return now }))
	ctx := context.Background()

	err := store.Observe(ctx, "api.github.com", srl.Observation{Limit: 100, Remaining: 2, Reset: 30 * time.Second})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for i := 0; i < 3; i++ {
		d, _ := store.Allow(ctx, "api.github.com")
		fmt.Printf("allowed=%v remaining=%d retry-after=%v cause=%v\n", d.Allowed, d.Remaining, d.RetryAfter, d.Cause)
	}
	st, _ := store.Status(ctx, "api.github.com")
	fmt.Printf("%d of %d left, utilization %.2f\n", st.Remaining, st.Limit, st.Utilization())
	// Output:
	// allowed=true remaining=1 retry-after=0s cause=none
	// allowed=true remaining=0 retry-after=0s cause=none
	// allowed=false remaining=0 retry-after=30s cause=quota
	// 0 of 100 left, utilization 1.00
}

// Memory is bounded: past WithMaxKeys, a new key evicts one close to
// expiry.
func ExampleWithMaxKeys() {
	store := fallback.New(fallback.WithMaxKeys(1000))
	ctx := context.Background()
	for i := 0; i < 5000; i++ {
		_, _ = store.Allow(ctx, fmt.Sprintf("tenant-%d", i), srl.PerMinute(10))
	}
	fmt.Println(store.Len() <= 1000, store.Evictions() > 0)
	// Output: true true
}
