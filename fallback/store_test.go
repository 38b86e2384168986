package fallback

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
		s := New(WithClock(clock.Now))
		return backendtest.Harness{Backend: s, TTL: s.ttl, LimitFields: s.limitFields}
	})
}

func TestAllowedPathAllocatesNothing(t *testing.T) {
	s := New()
	ctx := context.Background()
	limits := []srl.Limit{srl.PerSecond(1_000_000).WithBurst(1_000_000), srl.PerHour(100_000_000).WithBurst(1_000_000)}
	if _, err := s.Allow(ctx, "hot", limits...); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if d, _ := s.Allow(ctx, "hot", limits...); !d.Allowed {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Fatalf("Allow on an existing key allocates %v times", allocs)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	clock := backendtest.NewClock(backendtest.Epoch)
	s := New(WithClock(clock.Now), WithMaxKeys(shardCount*10))
	ctx := context.Background()
	for i := 0; i < 20_000; i++ {
		if _, err := s.Allow(ctx, "k"+strconv.Itoa(i), srl.PerMinute(1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n > shardCount*10 {
		t.Fatalf("%d keys stored, bound %d", n, shardCount*10)
	}
	if s.Evictions() == 0 {
		t.Fatal("no eviction counted past the bound")
	}
}

func TestIdleKeysExpire(t *testing.T) {
	clock := backendtest.NewClock(backendtest.Epoch)
	s := New(WithClock(clock.Now))
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		_, _ = s.Allow(ctx, "old"+strconv.Itoa(i), srl.PerSecond(10))
	}
	clock.Advance(time.Minute)
	// New traffic sweeps expired entries as it inserts.
	for i := 0; i < 5000; i++ {
		_, _ = s.Allow(ctx, "new"+strconv.Itoa(i), srl.PerSecond(10))
	}
	if n := s.Len(); n > 5000+200 {
		t.Fatalf("%d keys stored after the first 1000 expired; sweeping does not keep up", n)
	}
}

func TestSeedStartsFromTheLastSharedState(t *testing.T) {
	clock := backendtest.NewClock(backendtest.Epoch)
	s := New(WithClock(clock.Now))
	ctx := context.Background()
	s.Seed("k", Seed{QuotaLimit: 10, QuotaRemaining: 1, QuotaReset: 30 * time.Second})
	if d, _ := s.Allow(ctx, "k"); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("first call after the seed: %+v", d)
	}
	if d, _ := s.Allow(ctx, "k"); d.Allowed || d.Cause != srl.CauseQuota || d.RetryAfter != 30*time.Second {
		t.Fatalf("the seeded quota is spent: %+v", d)
	}
	s.Seed("k", Seed{BlockedFor: time.Minute})
	if d, _ := s.Allow(ctx, "k"); d.Cause != srl.CauseBlocked || d.RetryAfter != time.Minute {
		t.Fatalf("the seeded block: %+v", d)
	}
	s.Seed("k", Seed{BlockedFor: time.Second}) // never shortens a block
	if st, _ := s.Status(ctx, "k"); st.BlockedFor != time.Minute {
		t.Fatalf("a shorter seed shortened the block: %+v", st)
	}
	s.Seed("", Seed{BlockedFor: time.Second})
	s.Seed("x", Seed{QuotaReset: -time.Second})
	if s.Len() != 1 {
		t.Fatalf("invalid seeds stored state: %d keys", s.Len())
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, s := range []*Store{New(WithMaxKeys(0)), New(WithClock(nil)), New(WithThrottleBackoff(0, time.Second))} {
		if _, err := s.Allow(context.Background(), "k"); err == nil {
			t.Error("an invalid option was accepted silently")
		}
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New().Allow(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
