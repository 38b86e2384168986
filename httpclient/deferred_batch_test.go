package httpclient

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// batchRecorder is a backend that records each ObserveMany call.
type batchRecorder struct {
	srl.Backend
	mu    sync.Mutex
	calls [][]int // per call, the Remaining of each observation, in order
	keys  []string
}

func (b *batchRecorder) ObserveMany(_ context.Context, key string, os []srl.Observation) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var got []int
	for _, o := range os {
		got = append(got, o.Remaining)
	}
	b.calls = append(b.calls, got)
	b.keys = append(b.keys, key)
	return nil
}

func (b *batchRecorder) Observe(ctx context.Context, key string, o srl.Observation) error {
	return b.ObserveMany(ctx, key, []srl.Observation{o})
}

func (b *batchRecorder) recorded() ([][]int, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]int(nil), b.calls...), append([]string(nil), b.keys...)
}

// A key's deferred observations go out together, in the order they came,
// when wait or a full batch asks; an observation stored at once takes the
// waiting ones of its key with it, ahead of itself.
func TestDeferredObservationsAreBatched(t *testing.T) {
	ctx := context.Background()
	obs := func(remaining int) srl.Observation { return srl.Observation{Remaining: remaining, Limit: 1000} }
	tests := []struct {
		name string
		run  func(d *deferrer) error
		want map[string][][]int // per key, its calls in order (keys go out concurrently)
	}{
		{
			name: "wait sends each key's together",
			run: func(d *deferrer) error {
				for i, key := range []string{"a", "b", "a", "a", "b"} {
					if !d.observe(key, obs(i)) {
						t.Fatalf("observation %d refused", i)
					}
				}
				return d.wait(ctx)
			},
			want: map[string][][]int{"a": {{0, 2, 3}}, "b": {{1, 4}}},
		},
		{
			name: "a full batch goes out without waiting",
			run: func(d *deferrer) error {
				for i := 0; i <= maxObservationsPerFlush; i++ {
					d.observe("a", obs(i))
				}
				deadline := time.Now().Add(10 * time.Second)
				for calls, _ := d.backend.(*batchRecorder).recorded(); len(calls) == 0; calls, _ = d.backend.(*batchRecorder).recorded() {
					if time.Now().After(deadline) {
						t.Fatal("a full batch was not sent within 10s")
					}
					time.Sleep(time.Millisecond)
				}
				return d.wait(ctx)
			},
			want: map[string][][]int{"a": {countTo(maxObservationsPerFlush), {maxObservationsPerFlush}}},
		},
		{
			name: "storing one at once sends the key's waiting ones first",
			run: func(d *deferrer) error {
				d.observe("a", obs(1))
				d.observe("b", obs(2))
				d.observe("a", obs(3))
				if err := d.storeNow(ctx, "a", obs(4)); err != nil {
					return err
				}
				if err := d.storeNow(ctx, "c", obs(5)); err != nil {
					return err
				}
				return d.wait(ctx)
			},
			want: map[string][][]int{"a": {{1, 3, 4}}, "b": {{2}}, "c": {{5}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &batchRecorder{}
			// (an hour: nothing goes out by the timer during the test)
			d := newDeferrer(rec, time.Hour)
			if err := tc.run(d); err != nil {
				t.Fatal(err)
			}
			calls, keys := rec.recorded()
			got := map[string][][]int{}
			for i, key := range keys {
				got[key] = append(got[key], calls[i])
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("calls %v; want %v", got, tc.want)
			}
			if n := len(d.slots); n != 0 {
				t.Fatalf("%d slots still taken after wait", n)
			}
		})
	}
}

// A deferred observation goes out by itself once deferredFlushAfter passes.
func TestDeferredObservationsFlushByThemselves(t *testing.T) {
	rec := &batchRecorder{}
	d := newDeferrer(rec, time.Millisecond)
	d.observe("a", srl.Observation{Remaining: 7, Limit: 10})
	deadline := time.Now().Add(10 * time.Second)
	for {
		calls, _ := rec.recorded()
		if reflect.DeepEqual(calls, [][]int{{7}}) {
			break
		}
		if len(calls) > 0 || time.Now().After(deadline) {
			t.Fatalf("calls %v; want [[7]] within 10s", calls)
		}
		time.Sleep(time.Millisecond)
	}
}

func countTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
