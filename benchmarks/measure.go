package main

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// syncMap is a typed sync.Map with get-or-create.
type syncMap[V any] struct{ m sync.Map }

func (s *syncMap[V]) get(key string, create func() V) V {
	if v, ok := s.m.Load(key); ok {
		return v.(V)
	}
	v, _ := s.m.LoadOrStore(key, create())
	return v.(V)
}

// latency is a histogram with 1µs buckets up to 10ms and 100µs buckets up
// to 1s: recording allocates nothing.
type latency struct {
	fine   [10_000]uint32
	coarse [10_000]uint32
	over   uint32
}

func (h *latency) record(d time.Duration) {
	us := d.Microseconds()
	switch {
	case us < 10_000:
		h.fine[us]++
	case us < 1_000_000:
		h.coarse[us/100]++
	default:
		h.over++
	}
}

func (h *latency) merge(o *latency) {
	for i := range h.fine {
		h.fine[i] += o.fine[i]
		h.coarse[i] += o.coarse[i]
	}
	h.over += o.over
}

// quantile returns the q-quantile (0..1) of the recorded latencies.
func (h *latency) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.fine {
		total += uint64(h.fine[i]) + uint64(h.coarse[i])
	}
	total += uint64(h.over)
	if total == 0 {
		return 0
	}
	target := uint64(q * float64(total))
	var seen uint64
	for i, n := range h.fine {
		if seen += uint64(n); seen > target {
			return time.Duration(i) * time.Microsecond
		}
	}
	for i, n := range h.coarse {
		if i < 100 {
			continue
		}
		if seen += uint64(n); seen > target {
			return time.Duration(i*100) * time.Microsecond
		}
	}
	return time.Second
}

// result is one contender's run of one scenario.
type result struct {
	ops, allowed, errs int64
	elapsed            time.Duration
	p50, p99           time.Duration
	allocsPerOp        float64
	firstErr           error
	// lat is the recorded run's latencies, kept so that rounds merge.
	lat *latency
}

// add merges the result of another round of the same measurement.
func (r *result) add(o result) {
	if r.lat == nil {
		*r = o
		return
	}
	mallocs := r.allocsPerOp*float64(r.ops) + o.allocsPerOp*float64(o.ops)
	r.ops, r.allowed, r.errs, r.elapsed = r.ops+o.ops, r.allowed+o.allowed, r.errs+o.errs, r.elapsed+o.elapsed
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	r.lat.merge(o.lat)
	r.p50, r.p99 = r.lat.quantile(0.50), r.lat.quantile(0.99)
	if r.ops > 0 {
		r.allocsPerOp = mallocs / float64(r.ops)
	}
}

func (r result) perSecond() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// measure runs decide from goroutines over keys for d, after a short
// warm-up, and reports throughput, latency and allocations per decision.
func measure(decide decideFunc, keys []string, goroutines int, d time.Duration) result {
	return measureAround(decide, keys, goroutines, d, nil)
}

// measureAround is measure calling around(start) before the recorded run
// and the function it returns after it (with the run's decisions), so a
// caller can read a counter over exactly that run.
func measureAround(decide decideFunc, keys []string, goroutines int, d time.Duration, around func() func(ops int64)) result {
	run := func(d time.Duration, record bool) result {
		var ops, allowed, errs atomic.Int64
		var firstErr atomic.Value
		hists := make([]*latency, goroutines)
		for i := range hists {
			hists[i] = &latency{}
		}
		var wg sync.WaitGroup
		var stop atomic.Bool
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				ctx := context.Background()
				h := hists[g]
				i := g
				var n, a, e int64
				for !stop.Load() {
					t0 := time.Now()
					ok, err := decide(ctx, keys[i%len(keys)])
					h.record(time.Since(t0))
					i += goroutines
					n++
					switch {
					case err != nil:
						e++
						firstErr.CompareAndSwap(nil, err)
					case ok:
						a++
					}
				}
				ops.Add(n)
				allowed.Add(a)
				errs.Add(e)
			}(g)
		}
		time.Sleep(d)
		stop.Store(true)
		wg.Wait()
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		r := result{ops: ops.Load(), allowed: allowed.Load(), errs: errs.Load(), elapsed: elapsed}
		if err, ok := firstErr.Load().(error); ok {
			r.firstErr = err
		}
		if record {
			total := &latency{}
			for _, h := range hists {
				total.merge(h)
			}
			r.p50, r.p99, r.lat = total.quantile(0.50), total.quantile(0.99), total
			if r.ops > 0 {
				r.allocsPerOp = float64(after.Mallocs-before.Mallocs) / float64(r.ops)
			}
		}
		return r
	}
	run(min(d/4, 500*time.Millisecond), false)
	var done func(int64)
	if around != nil {
		done = around()
	}
	r := run(d, true)
	if done != nil {
		done(r.ops)
	}
	return r
}
