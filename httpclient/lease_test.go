package httpclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// countingServer is a server with a quota of limit requests an hour: it
// counts what it serves, says what is left, and refuses (uncounted) once
// it is spent or while refuse is set.
type countingServer struct {
	*httptest.Server
	limit            int64
	served, refusals atomic.Int64
	refuse           atomic.Bool
}

func newCountingServer(t *testing.T, limit int64) *countingServer {
	t.Helper()
	s := &countingServer{limit: limit}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.FormatInt(limit, 10))
		h.Set("X-RateLimit-Reset", "3600")
		if s.refuse.Load() || s.served.Load() >= limit {
			s.refusals.Add(1)
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		h.Set("X-RateLimit-Remaining", strconv.FormatInt(limit-s.served.Add(1), 10))
	}))
	t.Cleanup(s.Close)
	return s
}

// acquireLog is a backend that records the cost of every Acquire.
type acquireLog struct {
	*redislimit.Limiter
	mu sync.Mutex
	ns []int
}

func (b *acquireLog) Acquire(ctx context.Context, r srl.Request) (srl.Decision, error) {
	b.mu.Lock()
	b.ns = append(b.ns, r.N)
	b.mu.Unlock()
	return b.Limiter.Acquire(ctx, r)
}

func (b *acquireLog) costs() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.ns...)
}

// refunds counts the requests the transport gave back.
type refunds struct{ n atomic.Int64 }

func (r *refunds) Event(e srl.Event) {
	if e.Kind == srl.EventRefunded {
		for _, c := range e.Costs {
			r.n.Add(int64(c.N))
		}
	}
}

func leaseClient(t *testing.T, addr string, opts ...httpclient.Option) (*http.Client, *acquireLog, *refunds) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	b := &acquireLog{Limiter: redislimit.New(rdb)}
	t.Cleanup(func() { b.Close() })
	var given refunds
	c := httpclient.New(append([]httpclient.Option{httpclient.WithBackend(b), httpclient.WithObserver(&given),
		httpclient.WithMaxWait(time.Second)}, opts...)...)
	t.Cleanup(func() { _ = httpclient.TransportOf(c).Close() })
	return c, b, &given
}

// leaseFixture is a process holding a lease on a roomy quota.
type leaseFixture struct {
	mr    *miniredis.Miniredis
	srv   *countingServer
	c     *http.Client
	b     *acquireLog
	given *refunds
}

// holdingLease starts Redis, a server with a quota of a million and a
// client with WithLease(8), and sends three requests: the third takes a
// lease of 8 and uses one, so 7 are left.
func holdingLease(t *testing.T) leaseFixture {
	t.Helper()
	f := leaseFixture{mr: miniredis.RunT(t), srv: newCountingServer(t, 1_000_000)}
	f.c, f.b, f.given = leaseClient(t, f.mr.Addr(), httpclient.WithLease(8))
	sendOK(t, f.c, f.srv.URL, 3)
	return f
}

// sendOK sends n requests to url through c and fails unless each gets a
// 200.
func sendOK(t *testing.T, c *http.Client, url string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if code, err := get(c, url); err != nil || code != http.StatusOK {
			t.Fatalf("request %d: %d, %v", i, code, err)
		}
	}
}

func get(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Once a decision has seen a roomy quota, a request takes a lease of 8
// and the next 7 are admitted from memory; every leased request is
// either sent or given back, and once every response is stored and the
// rest given back, the fleet's count is the server's own.
func TestLeaseAdmitsFromMemory(t *testing.T) {
	mr := miniredis.RunT(t)
	srv := newCountingServer(t, 1_000_000)
	c, b, given := leaseClient(t, mr.Addr(), httpclient.WithLease(8))
	const requests = 17
	sendOK(t, c, srv.URL, requests)
	if err := httpclient.TransportOf(c).Close(); err != nil {
		t.Fatal(err)
	}
	ns := b.costs()
	// The probe and the decision that first sees the quota ask for one.
	if len(ns) < 3 || ns[0] != 1 || ns[1] != 1 {
		t.Fatalf("acquired %v: want 1, 1, then leases", ns)
	}
	taken := 0
	for _, n := range ns[2:] {
		if n != 8 {
			t.Fatalf("acquired %v: every request after the second takes a lease of 8", ns)
		}
		taken += n
	}
	if sent := requests - 2; int64(taken) != int64(sent)+given.n.Load() {
		t.Fatalf("leases took %d requests, %d were sent and %d given back", taken, sent, given.n.Load())
	}
	if len(ns) > requests/2 {
		t.Fatalf("%d decisions by the backend for %d requests: leases admitted too few", len(ns), requests)
	}
	st, err := b.Peek(context.Background(), srl.Request{Key: strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	if want := int(srv.limit - srv.served.Load()); st.Quota.Remaining != want {
		t.Fatalf("the fleet sees %d left after Close, the server %d", st.Quota.Remaining, want)
	}
}

// What a lease leaves unused goes back to the fleet when its time is up.
func TestLeaseGivesBackWhatItDidNotUse(t *testing.T) {
	f := holdingLease(t)
	srv, b, given := f.srv, f.b, f.given
	key := strings.TrimPrefix(srv.URL, "http://")
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, err := b.Peek(context.Background(), srl.Request{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if st.Quota.Remaining == int(srv.limit-srv.served.Load()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s on, the fleet sees %d left and the server %d (%d given back)", st.Quota.Remaining, srv.limit-srv.served.Load(), given.n.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if given.n.Load() != 7 {
		t.Fatalf("%d requests given back, want the lease's 7", given.n.Load())
	}
}

// A refusal ends the lease of the process that got it: its next request
// asks the fleet, which knows the block, and is not sent.
func TestLeaseEndsWithARefusal(t *testing.T) {
	f := holdingLease(t)
	srv, c, given := f.srv, f.c, f.given
	srv.refuse.Store(true)
	const sent = 4 // the three that took the lease and the refused one
	if code, err := get(c, srv.URL); err != nil || code != http.StatusTooManyRequests {
		t.Fatalf("the refused request: %d, %v", code, err)
	}
	_, err := get(c, srv.URL)
	var le *srl.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("after a refusal: %v, want a LimitError", err)
	}
	if n := srv.refusals.Load(); n != 1 {
		t.Fatalf("the server refused %d requests: the one after the refusal was sent", n)
	}
	// The last decision, the refused one, asked for one request alone;
	// every request admitted before it was sent or given back (a lease
	// whose time ran out before the refusal gave its rest back then).
	asked := f.b.costs()
	if len(asked) == 0 || asked[len(asked)-1] != 1 {
		t.Fatalf("acquired %v: the request after the refusal did not ask the fleet alone", asked)
	}
	taken := 0
	for _, n := range asked[:len(asked)-1] {
		taken += n
	}
	if int64(taken) != sent+given.n.Load() {
		t.Fatalf("acquired %v: %d requests taken, %d sent and %d given back", asked, taken, sent, given.n.Load())
	}
}

// Another process's refusal reaches a process holding a lease at its next
// decision by the fleet: after at most what the lease had left.
func TestLeaseBoundsWhatAnotherProcessMisses(t *testing.T) {
	f := holdingLease(t)
	srv, leased := f.srv, f.c
	other, _, _ := leaseClient(t, f.mr.Addr())
	srv.refuse.Store(true)
	if code, err := get(other, srv.URL); err != nil || code != http.StatusTooManyRequests {
		t.Fatalf("the other process's request: %d, %v", code, err)
	}
	srv.refuse.Store(false)
	before := srv.served.Load()
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := get(leased, srv.URL)
		var le *srl.LimitError
		if errors.As(err, &le) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("10 s after another process's refusal, a leased process still sends")
		}
	}
	if missed := srv.served.Load() - before; missed > 7 {
		t.Fatalf("%d requests sent after another process's refusal; a lease of 8 had at most 7 left", missed)
	}
}

// Leases never spend more than the server's quota: goroutines racing for
// the last of it get no refusal from the server, and the quota is spent.
func TestLeasesNeverOverspend(t *testing.T) {
	mr := miniredis.RunT(t)
	srv := newCountingServer(t, 600)
	c, _, _ := leaseClient(t, mr.Addr(), httpclient.WithLease(8), httpclient.WithMaxWait(100*time.Millisecond))
	var wg sync.WaitGroup
	var unexpected atomic.Value
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				_, err := get(c, srv.URL)
				var le *srl.LimitError
				if err != nil && !errors.As(err, &le) {
					unexpected.Store(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := unexpected.Load(); err != nil {
		t.Fatalf("an error other than a limit: %v", err)
	}
	if n := srv.refusals.Load(); n != 0 {
		t.Fatalf("the server refused %d requests", n)
	}
	if n := srv.served.Load(); n < 540 {
		t.Fatalf("%d of the quota's 600 requests were sent", n)
	}
}

func TestWithLeaseRejectsASizeOutOfRange(t *testing.T) {
	for _, n := range []int{-1, httpclient.MaxLease + 1} {
		c := httpclient.New(httpclient.WithLease(n))
		_, err := c.Get("http://127.0.0.1:1/")
		if err == nil || !strings.Contains(err.Error(), "lease of "+strconv.Itoa(n)) {
			t.Errorf("WithLease(%d): %v", n, err)
		}
	}
}

// Where a lease would weaken what a decision enforces, none is taken: a
// configured limit paces every request, a small quota or one nearly spent
// is counted to the last request, a default limit too tight for a lease
// must still be one the request passes, and WithInlineObserve stores
// every response first.
func TestLeaseIsNotTaken(t *testing.T) {
	for _, c := range []struct {
		name         string
		limit, spent int64
		opts         []httpclient.Option
	}{
		{"a configured limit", 1_000_000, 0, []httpclient.Option{httpclient.WithLimits(srl.PerSecond(1000).WithBurst(1000))}},
		{"a small quota", 100, 0, nil},
		{"a quota with an eighth left", 1_000_000, 875_000, nil},
		{"a default limit of burst 1", 1_000_000, 0, []httpclient.Option{httpclient.WithDefaultLimits(srl.PerSecond(1000))}},
		{"WithInlineObserve", 1_000_000, 0, []httpclient.Option{httpclient.WithInlineObserve()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mr := miniredis.RunT(t)
			srv := newCountingServer(t, c.limit)
			srv.served.Store(c.spent)
			c, b, _ := leaseClient(t, mr.Addr(), append(c.opts, httpclient.WithLease(8))...)
			sendOK(t, c, srv.URL, 10)
			for _, n := range b.costs() {
				if n != 1 {
					t.Fatalf("acquired %v: a lease was taken", b.costs())
				}
			}
			if len(b.costs()) != 10 {
				t.Fatalf("%d decisions by the backend for 10 requests", len(b.costs()))
			}
		})
	}
}

// When Redis goes away under a lease, requests go on: what is leased is
// used, then the limiter's twin decides, and nothing is leased from it.
func TestLeaseOutlivesRedis(t *testing.T) {
	f := holdingLease(t)
	f.mr.Close()
	sendOK(t, f.c, f.srv.URL, 30)
	ns := f.b.costs()
	leases := 0
	for _, n := range ns {
		if n > 1 {
			leases++
		}
	}
	// Before the outage, the third request's; after it, at most the one
	// whose decision found Redis gone (the twin's admission is not leased,
	// and no decision it makes leads to another).
	if leases > 2 {
		t.Fatalf("acquired %v: leases taken while Redis was down", ns)
	}
}

// heldLease is a backend that, once armed, holds the answer to the next
// lease-sized Acquire (N > 1) after Redis has decided it, until release is
// closed: a lease on its way back while other requests run.
type heldLease struct {
	*redislimit.Limiter
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (b *heldLease) Acquire(ctx context.Context, r srl.Request) (srl.Decision, error) {
	d, err := b.Limiter.Acquire(ctx, r)
	if r.N > 1 && b.armed.CompareAndSwap(true, false) {
		b.held <- struct{}{}
		<-b.release
	}
	return d, err
}

// A refusal this process got while one of its leases was being decided
// ends that lease before it starts: the request that asked for it is
// admitted alone, the rest is given back, and the next request is decided
// by the backend, which still refuses it.
func TestOwnRefusalEndsALeaseStillBeingDecided(t *testing.T) {
	mr := miniredis.RunT(t)
	srv := newCountingServer(t, 1_000_000)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	b := &heldLease{Limiter: redislimit.New(rdb), held: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { b.Close() })
	var given refunds
	c := httpclient.New(httpclient.WithBackend(b), httpclient.WithLease(8), httpclient.WithObserver(&given),
		httpclient.WithMaxWait(time.Second))
	t.Cleanup(func() { _ = httpclient.TransportOf(c).Close() })
	sendOK(t, c, srv.URL, 2) // the probe, then a decision that sees the roomy quota
	b.armed.Store(true)
	first := make(chan int, 1)
	go func() { code, _ := get(c, srv.URL); first <- code }()
	<-b.held // the third request's lease of 8 is decided, its answer held
	srv.refuse.Store(true)
	if code, err := get(c, srv.URL); err != nil || code != http.StatusTooManyRequests {
		t.Fatalf("the request the server refuses: %d, %v", code, err)
	}
	srv.refuse.Store(false)
	close(b.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("the request whose lease was held: %d", code)
	}
	before := srv.served.Load()
	code, err := get(c, srv.URL)
	var le *srl.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("after this process's 429 (Retry-After 60), the next request got %d, %v; the server served %d more",
			code, err, srv.served.Load()-before)
	}
	// The refused request took a lease of its own (the held one was not
	// in force yet), which its 429 ended: both leases' 7 go back.
	if n := given.n.Load(); n != 14 {
		t.Fatalf("gave back %d leased requests, want 14 (7 of each lease)", n)
	}
}
