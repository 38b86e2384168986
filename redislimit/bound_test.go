package redislimit

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// The refusal cache holds at most denyShards × denyPerShard entries, for a
// million distinct refused keys.
func TestRefusalCacheIsBounded(t *testing.T) {
	c := newDenyCache()
	now := time.Now()
	d := srl.Decision{RetryAfter: time.Hour, Cause: srl.CauseQuota}
	for i := 0; i < 1_000_000; i++ {
		c.remember("srl:{k"+strconv.Itoa(i)+"}", 1, d, 0, now)
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].entries)
	}
	if n > denyShards*denyPerShard {
		t.Fatalf("%d refusals cached, bound %d", n, denyShards*denyPerShard)
	}
	if _, ok := c.lookup("srl:{k999999}", 1, now); !ok {
		t.Fatal("the newest refusal was not cached")
	}
	// Trust ends within MaxRefusalTrust, whatever the refusal's length.
	if _, ok := c.lookup("srl:{k999999}", 1, now.Add(MaxRefusalTrust)); ok {
		t.Fatal("a refusal was trusted past MaxRefusalTrust")
	}
}

// Waiters without a deadline on a refusal longer than a reservation sleep
// until it can end: 200 of them on an hour's limit make a few hundred
// decisions in a second, not a busy loop on the refusal cache.
func TestWaitersSleepOnLongRefusals(t *testing.T) {
	_, rdb := newMini(t, nil)
	var decisions atomic.Int64
	l := New(rdb, WithObserver(srl.ObserverFunc(func(e srl.Event) {
		if e.Kind == srl.EventDecided {
			decisions.Add(1)
		}
	})))
	defer l.Close()
	limit := srl.PerHour(1)
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.Wait(ctx, "slow", limit); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = l.Wait(ctx, "slow", limit) }()
	}
	start := decisions.Load()
	time.Sleep(time.Second)
	made := decisions.Load() - start
	cancel()
	wg.Wait()
	if made > 400 {
		t.Fatalf("200 waiters made %d decisions in a second on a refusal of an hour", made)
	}
}
