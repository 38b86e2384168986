package integration

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// BenchmarkQuotaDimensions measures decisions on keys whose server quota
// is known in one unit (requests) against keys known in two (requests and
// tokens, as an LLM API advertises), on a real Redis and in the in-memory
// store, in the same run. The quotas are far above what the machine can
// spend, so every decision is an admission that spends from each.
// Run: go test -run '^$' -bench QuotaDimensions -benchmem ./integration/
func BenchmarkQuotaDimensions(b *testing.B) {
	addr := sharedRedis(b)
	const keys = 1000
	dims := []struct {
		name   string
		quotas []srl.QuotaObservation
		costs  []srl.Cost
	}{
		{"requests", []srl.QuotaObservation{{Unit: srl.UnitRequests, Limit: 1 << 38, Remaining: 1 << 38, Reset: time.Hour}}, nil},
		{"requests+tokens", []srl.QuotaObservation{
			{Unit: srl.UnitRequests, Limit: 1 << 38, Remaining: 1 << 38, Reset: time.Hour},
			{Unit: srl.UnitTokens, Limit: 1 << 38, Remaining: 1 << 38, Reset: time.Hour},
		}, []srl.Cost{{Unit: srl.UnitTokens, N: 900}}},
	}
	backends := []struct {
		name string
		make func(b *testing.B) srl.Backend
	}{
		{"redis", func(b *testing.B) srl.Backend {
			l := redislimit.New(newClient(b, addr, nil), redislimit.WithKeyPrefix(uniquePrefix(b)), redislimit.WithDecisionTimeout(time.Second))
			b.Cleanup(func() { _ = l.Close() })
			return l
		}},
		{"memory", func(*testing.B) srl.Backend { return fallback.New() }},
	}
	for _, be := range backends {
		for _, dim := range dims {
			b.Run(be.name+"/"+dim.name, func(b *testing.B) {
				backend := be.make(b)
				ctx := context.Background()
				names := make([]string, keys)
				for i := range names {
					names[i] = "quota-" + strconv.Itoa(i)
					if err := backend.Observe(ctx, names[i], srl.Observation{Quotas: dim.quotas}); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Uint64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r := srl.Request{Key: names[next.Add(1)%keys], N: 1, Costs: dim.costs}
						d, err := backend.Acquire(ctx, r)
						if err != nil || !d.Allowed || !d.Quota.Known {
							b.Fatalf("%+v, %v", d, err)
						}
					}
				})
			})
		}
	}
}
