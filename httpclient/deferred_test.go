package httpclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/internal/scripts"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// observeGate holds every run of observe.lua until released, and counts
// the commands sent while a request is on its way.
type observeGate struct {
	held    chan struct{} // one value per observe that reached the gate
	release chan struct{}
	open    atomic.Bool
}

func (g *observeGate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *observeGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (g *observeGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) > 1 && !g.open.Load() && (args[1] == scripts.Observe.SHA || args[1] == scripts.Observe.Src) {
			g.held <- struct{}{}
			<-g.release
		}
		return next(ctx, cmd)
	}
}

// A roomy success returns before what it said is stored (one round trip
// on the request's path: the decision); a refusal, or a quota nearly
// spent, is stored before the response is returned; Status waits for what
// was deferred before it.
func TestDeferredObserve(t *testing.T) {
	mr := miniredis.RunT(t)
	var remaining, status atomic.Int64
	var noLimit atomic.Bool
	remaining.Store(90)
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !noLimit.Load() {
			w.Header().Set("X-RateLimit-Limit", "100")
		}
		w.Header().Set("X-RateLimit-Remaining", strconv.FormatInt(remaining.Load(), 10))
		w.Header().Set("X-RateLimit-Reset", "60")
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()

	gate := &observeGate{held: make(chan struct{}, 4), release: make(chan struct{})}
	gate.open.Store(true)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	rdb.AddHook(gate)
	defer rdb.Close()
	client := httpclient.New(
		// (A decision budget longer than the gate holds an observation.)
		httpclient.WithRedis(rdb, redislimit.WithDecisionTimeout(time.Minute)), httpclient.WithMaxWait(time.Second))
	tr := httpclient.TransportOf(client)
	defer tr.Close()
	get := func() <-chan int {
		done := make(chan int, 1)
		go func() {
			resp, err := client.Get(srv.URL)
			if err != nil {
				t.Error(err)
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		return done
	}
	within := func(what string, ch <-chan int) int {
		t.Helper()
		select {
		case code := <-ch:
			return code
		case <-time.After(10 * time.Second):
			t.Fatalf("not within 10s: %s", what)
			return 0
		}
	}

	// The first response teaches the quota: stored at once (the gate is
	// open).
	if code := within("the first request", get()); code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
	gate.open.Store(false)

	held := func() <-chan int {
		ch := make(chan int, 1)
		go func() { <-gate.held; ch <- 0 }()
		return ch
	}

	// Roomy: the response comes back while its observation is held.
	remaining.Store(80)
	if code := within("a roomy success, its observation held", get()); code != http.StatusOK {
		t.Fatalf("roomy request: %d", code)
	}
	within("the deferred observation reaching Redis", held())
	statusDone := make(chan int, 1)
	go func() {
		st, err := tr.Status(context.Background(), srv.URL)
		if err != nil {
			t.Error(err)
		}
		statusDone <- st.Quota.Remaining
	}()
	gate.release <- struct{}{}
	if left := within("Status after the deferred observation", statusDone); left > 80 {
		t.Fatalf("Status says %d left, the deferred response said 80", left)
	}

	// Nearly spent (also when the response leaves the limit the fleet
	// knows unsaid), or refused: stored before the response is returned.
	for _, tc := range []struct {
		remaining, status int64
		noLimit           bool
	}{{5, http.StatusOK, false}, {5, http.StatusOK, true}, {0, http.StatusTooManyRequests, false}} {
		remaining.Store(tc.remaining)
		status.Store(tc.status)
		noLimit.Store(tc.noLimit)
		done := get()
		within("the observation reaching Redis", held())
		select {
		case <-done:
			t.Fatalf("%d left (limit said: %v), status %d: the response came back before its observation was stored", tc.remaining, !tc.noLimit, tc.status)
		default:
		}
		gate.release <- struct{}{}
		if code := within("the response once its observation was stored", done); code != int(tc.status) {
			t.Fatalf("got %d, want %d", code, tc.status)
		}
	}
}

// batchAhead is a backend whose next background batch (ObserveMany), once
// armed, is held until the server has answered a later request (served)
// and then, at most a while longer, until that response's observation has
// been stored alone (stored): an older batch still on its way when a
// newer response is stored before it returns.
type batchAhead struct {
	*redislimit.Limiter
	armed   atomic.Bool
	held    chan struct{}
	served  chan struct{}
	stored  chan struct{}
	landed  chan struct{}
	waiting atomic.Bool // the held batch waits for stored
}

func (b *batchAhead) ObserveMany(ctx context.Context, key string, os []srl.Observation) error {
	if !b.armed.CompareAndSwap(true, false) {
		return b.Limiter.ObserveMany(ctx, key, os)
	}
	b.held <- struct{}{}
	<-b.served
	b.waiting.Store(true)
	select {
	case <-b.stored:
	case <-time.After(300 * time.Millisecond):
		// Stored after this batch, as it should be: nothing to wait for.
	}
	err := b.Limiter.ObserveMany(ctx, key, os)
	close(b.landed)
	return err
}

func (b *batchAhead) Observe(ctx context.Context, key string, o srl.Observation) error {
	err := b.Limiter.Observe(ctx, key, o)
	if b.waiting.CompareAndSwap(true, false) {
		close(b.stored)
	}
	return err
}

// A spent quota, stored before its response returns, is merged after the
// key's older responses whose background store was already under way: a
// roomier one landing later must not give the fleet back what the server
// said is gone.
func TestSpentQuotaIsStoredAfterTheBatchesAheadOfIt(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	b := &batchAhead{Limiter: redislimit.New(rdb), held: make(chan struct{}, 1), served: make(chan struct{}),
		stored: make(chan struct{}), landed: make(chan struct{})}
	t.Cleanup(func() { b.Close() })
	var remaining atomic.Int64
	remaining.Store(99)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		left := remaining.Load()
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", strconv.FormatInt(left, 10))
		w.Header().Set("X-RateLimit-Reset", "3600")
		if left == 0 {
			close(b.served)
		}
	}))
	t.Cleanup(srv.Close)
	c := httpclient.New(httpclient.WithBackend(b), httpclient.WithMaxWait(time.Second))
	t.Cleanup(func() { _ = httpclient.TransportOf(c).Close() })
	sendOK(t, c, srv.URL, 1) // learns the quota, stored at once
	b.armed.Store(true)
	remaining.Store(50)      // other clients of the server spent meanwhile
	sendOK(t, c, srv.URL, 1) // roomy: deferred, its batch held on its way
	<-b.held
	remaining.Store(0)
	sendOK(t, c, srv.URL, 1) // spent: stored before it returns
	select {
	case <-b.landed:
	case <-time.After(5 * time.Second):
		t.Fatal("the held batch never landed")
	}
	other := redislimit.New(redis.NewClient(&redis.Options{Addr: mr.Addr()}))
	t.Cleanup(func() { other.Close() })
	d, err := other.Acquire(context.Background(), srl.Request{Key: strings.TrimPrefix(srv.URL, "http://"), N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Fatalf("the server said 0 left and the response returned, then an older batch landed: another process was admitted (%d left)", d.Quota.Remaining)
	}
}
