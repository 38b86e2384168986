package fallback

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/time/rate"

	srl "github.com/smartratelimit/smartratelimit"
)

// BenchmarkFallbackAllow compares the in-memory twin with
// golang.org/x/time/rate on the allowed path: one key, and 10,000 keys
// (x/time/rate keyed by a sync.Map, the usual way to use it per key),
// serially and with b.RunParallel.
//
//	go test -run '^$' -bench FallbackAllow -benchmem ./fallback/
func BenchmarkFallbackAllow(b *testing.B) {
	// The finest representable rate with a burst no benchmark can spend.
	limit := srl.PerSecond(1_000_000).WithBurst(1 << 40)
	for _, keys := range []int{1, 10_000} {
		names := make([]string, keys)
		for i := range names {
			names[i] = "key-" + strconv.Itoa(i)
		}
		suffix := "one-key"
		if keys > 1 {
			suffix = strconv.Itoa(keys) + "-keys"
		}

		b.Run("fallback/"+suffix, func(b *testing.B) {
			s := New()
			ctx := context.Background()
			run(b, names, func(key string) bool {
				d, _ := s.Allow(ctx, key, limit)
				return d.Allowed
			})
		})

		b.Run("x-time-rate/"+suffix, func(b *testing.B) {
			var limiters sync.Map
			get := func(key string) *rate.Limiter {
				if l, ok := limiters.Load(key); ok {
					return l.(*rate.Limiter)
				}
				l, _ := limiters.LoadOrStore(key, rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst))
				return l.(*rate.Limiter)
			}
			if keys == 1 {
				one := rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst)
				get = func(string) *rate.Limiter { return one }
			}
			run(b, names, func(key string) bool { return get(key).Allow() })
		})
	}
}

// run measures allow serially and in parallel, cycling over the keys.
func run(b *testing.B, names []string, allow func(key string) bool) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if !allow(names[i%len(names)]) {
				b.Fatal("refused on the allowed path")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var next atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !allow(names[next.Add(1)%uint64(len(names))]) {
					b.Fatal("refused on the allowed path")
				}
			}
		})
	})
}
