package integration

import (
	"context"
	"testing"
	"time"

	"github.com/smartratelimit/smartratelimit/backendtest"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// TestConformanceRealRedis runs the conformance suite on a real Redis. The
// suite needs a clock it controls, which real Redis's TIME is not, so the
// limiter runs in client-time mode on the suite's clock: the very scripts
// of server-time mode, with now passed in. TTLs elapse in real time here,
// so the suite checks them as set, not as expired.
func TestConformanceRealRedis(t *testing.T) {
	addr := sharedRedis(t)
	backendtest.Run(t, func(t *testing.T, clock *backendtest.Clock) backendtest.Harness {
		rdb := newClient(t, addr, nil)
		prefix := uniquePrefix(t)
		l := redislimit.New(rdb, redislimit.WithKeyPrefix(prefix), redislimit.WithClientClock(clock.Now),
			redislimit.WithDecisionTimeout(10*time.Second))
		t.Cleanup(func() { _ = l.Close() })
		return backendtest.Harness{
			Backend: l,
			TTL: func(key string) (time.Duration, bool) {
				ttl, err := rdb.PTTL(context.Background(), redislimit.RedisKey(prefix, key)).Result()
				if err != nil {
					t.Fatalf("PTTL: %v", err)
				}
				return ttl, ttl > 0
			},
			LimitFields: func(key string) int {
				fields, err := rdb.HKeys(context.Background(), redislimit.RedisKey(prefix, key)).Result()
				if err != nil {
					t.Fatalf("HKEYS: %v", err)
				}
				return backendtest.LimitFieldsOf(fields)
			},
		}
	})
}
