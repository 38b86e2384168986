package integration

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// BenchmarkAllow measures decisions against a real Redis on loopback, on
// the allowed path (the limit is far above what the machine can send).
// Run: go test -run '^$' -bench Allow -benchmem ./integration/
func BenchmarkAllow(b *testing.B) {
	addr := sharedRedis(b)
	limit := srl.PerSecond(1_000_000).WithBurst(1_000_000)
	for _, keys := range []int{1, 10_000} {
		name := "hot-key"
		if keys > 1 {
			name = strconv.Itoa(keys) + "-keys"
		}
		b.Run(name, func(b *testing.B) {
			rdb := newClient(b, addr, nil)
			l := redislimit.New(rdb, redislimit.WithKeyPrefix(uniquePrefix(b)), redislimit.WithDecisionTimeout(time.Second))
			names := make([]string, keys)
			for i := range names {
				names[i] = "bench-" + strconv.Itoa(i)
			}
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					key := names[next.Add(1)%uint64(keys)]
					d, err := l.Allow(ctx, key, limit)
					if err != nil || !d.Allowed {
						b.Fatalf("%+v, %v", d, err)
					}
				}
			})
		})
	}
}
