package fallback

import (
	"context"
	"strconv"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// The store's bound (WithMaxKeys, DefaultMaxKeys by default) holds for a
// million distinct keys, each with live state.
func TestAMillionKeysStayBounded(t *testing.T) {
	s := New()
	ctx := context.Background()
	limit := srl.PerHour(10)
	for i := 0; i < 1_000_000; i++ {
		if _, err := s.Allow(ctx, "k"+strconv.Itoa(i), limit); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n > DefaultMaxKeys {
		t.Fatalf("%d keys stored, bound %d", n, DefaultMaxKeys)
	}
	if s.Evictions() == 0 {
		t.Fatal("a million live keys evicted none")
	}
	// The newest keys still decide: their state was kept.
	d, _ := s.Allow(ctx, "k999999", limit)
	if d.Allowed || d.RetryAfter < 5*time.Minute {
		t.Fatalf("the newest key lost its state: %+v", d)
	}
}
