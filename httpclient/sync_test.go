package httpclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
)

// scriptedServer answers request i with responses[i] (the last one
// repeats): a status and headers, and counts what it saw.
type scripted struct {
	status int
	header map[string]string
}

func scriptedServer(t *testing.T, responses ...scripted) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(hits.Add(1)) - 1
		resp := responses[min(i, len(responses)-1)]
		for k, v := range resp.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.status)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// Item 1: a burst of 429s that carry the spent quota holds the key until
// the quota's reset, never for a growing backoff.
func TestConcurrentRefusalsHoldUntilTheReset(t *testing.T) {
	reset := "2"
	srv, _ := scriptedServer(t, scripted{http.StatusTooManyRequests, map[string]string{
		"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset,
	}})
	store := fallback.New()
	tr := NewTransport(nil, WithBackend(store), WithProbe(0), WithRaiseOnLimit())
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	st, err := tr.Status(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if st.BlockedFor != 0 || !st.Quota.Known || st.Quota.Remaining != 0 || st.Quota.ResetAfter > 2*time.Second {
		t.Fatalf("after a burst of 429s with the quota: %+v; want no backoff block, the quota held until its reset", st)
	}
}

// Item 1, GitHub's form: a 403 with remaining 0 and a reset.
func TestGitHub403HoldsUntilTheReset(t *testing.T) {
	srv, _ := scriptedServer(t, scripted{http.StatusForbidden, map[string]string{
		"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(30*time.Second).Unix(), 10),
	}})
	tr := NewTransport(nil, WithProbe(0), WithRaiseOnLimit())
	client := &http.Client{Transport: tr}
	for i := 0; i < 5; i++ {
		get(t, client, srv.URL)
	}
	st, _ := tr.Status(context.Background(), srv.URL)
	if st.BlockedFor != 0 || st.Quota.Remaining != 0 || st.Quota.ResetAfter < 25*time.Second {
		t.Fatalf("after GitHub 403s: %+v", st)
	}
}

// Item 2: any success ends a streak of refusals, even one without
// rate-limit headers: 429, 200, 200, 200, 429 blocks for 1s, not 2s.
func TestSuccessWithoutHeadersEndsTheStreak(t *testing.T) {
	refused, ok := scripted{http.StatusTooManyRequests, nil}, scripted{http.StatusOK, nil}
	srv, _ := scriptedServer(t, refused, ok, ok, ok, refused)
	tr := NewTransport(nil, WithProbe(0), WithMaxWait(5*time.Second))
	client := &http.Client{Transport: tr}
	for i := 0; i < 5; i++ {
		if _, err := get(t, client, srv.URL); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	st, _ := tr.Status(context.Background(), srv.URL)
	if st.BlockedFor <= 500*time.Millisecond || st.BlockedFor > time.Second {
		t.Fatalf("after 429, 200, 200, 200, 429: blocked for %v, want 1s", st.BlockedFor)
	}
}

// Item 7: at a cold start one request goes first; nobody else is sent
// until its response has been observed.
func TestColdStartProbesFirst(t *testing.T) {
	var inFlight, maxBeforeFirst atomic.Int64
	var first atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			<-release
		} else if inFlight.Load() == 0 {
			maxBeforeFirst.Add(1)
		}
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", "90")
		w.Header().Set("X-RateLimit-Reset", "60")
	}))
	defer srv.Close()
	client := New()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := get(t, client, srv.URL); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // the others poll the probe meanwhile
	if first.Load() && maxBeforeFirst.Load() != 0 {
		t.Fatalf("%d requests reached the server while the probe was out", maxBeforeFirst.Load())
	}
	inFlight.Store(1)
	close(release)
	wg.Wait()
	if n := maxBeforeFirst.Load(); n != 0 {
		t.Fatalf("%d requests reached the server before the probe's response", n)
	}
}

// Item 7: a server that sends no headers at all is noticed: after the
// probe's response nobody waits for probes any more.
func TestServerWithoutHeadersIsNotProbedAgain(t *testing.T) {
	srv, hits := headerServer(t, http.StatusOK, nil)
	client := New()
	for i := 0; i < 5; i++ {
		if _, err := get(t, client, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); get(t, client, srv.URL) }()
	}
	wg.Wait()
	if took := time.Since(start); took > 500*time.Millisecond || hits.Load() != 13 {
		t.Fatalf("8 concurrent requests to a header-less server took %v (%d hits); want no probe waits", took, hits.Load())
	}
}

// Item 8: a 429 whose retry cannot be admitted in time comes back as the
// response, never replaced by a LimitError.
func TestRetryThatCannotBeAdmittedReturnsTheResponse(t *testing.T) {
	srv, hits := scriptedServer(t, scripted{http.StatusTooManyRequests, map[string]string{
		"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20",
	}})
	client := New(WithRetry(RetryPolicy{MaxRetries: 3, Strategy: Fixed, BaseDelay: 10 * time.Millisecond, RetryOn: []int{429}}), WithMaxWait(time.Second))
	resp, err := client.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%v, %v; want the 429 back", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("%d requests sent; the quota was spent for 20s", hits.Load())
	}
	_ = body
}

// Item 8: WithMaxWait bounds the whole request, all its waits together.
func TestMaxWaitBoundsTheWholeRequest(t *testing.T) {
	srv, _ := scriptedServer(t, scripted{http.StatusTooManyRequests, map[string]string{"Retry-After": "0.4"}})
	client := New(WithRetry(RetryPolicy{MaxRetries: 5, Strategy: Fixed, BaseDelay: time.Millisecond, RetryOn: []int{429}}),
		WithMaxWait(time.Second), WithProbe(0))
	start := time.Now()
	resp, err := client.Get(srv.URL)
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%v, %v; want the last 429", resp, err)
	}
	resp.Body.Close()
	if took > 1200*time.Millisecond {
		t.Fatalf("one request took %v with a 1s max wait", took)
	}
}

// Item 9: a refusal whose body stalls does not hold the request; the caller
// still reads the whole body.
func TestStalledRefusalBodyDoesNotHang(t *testing.T) {
	proceed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"message":"slow `))
		w.(http.Flusher).Flush()
		<-proceed
		_, _ = w.Write([]byte(`down"}`))
	}))
	defer srv.Close()
	defer close(proceed)
	client := New(WithProbe(0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the response took %v to come back", took)
	}
	go func() { time.Sleep(50 * time.Millisecond); proceed <- struct{}{} }()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != `{"message":"slow down"}` {
		t.Fatalf("body %q, %v; want it whole", body, err)
	}
}

// Item 12: Status for a host shows its scopes; a URL works as well; a key
// with nothing stored says so.
func TestStatusOfAHostWithScopes(t *testing.T) {
	srv, _ := scriptedServer(t, scripted{http.StatusOK, map[string]string{
		"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4000", "X-RateLimit-Resource": "core",
		"X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
	}})
	tr := NewTransport(nil)
	client := &http.Client{Transport: tr}
	get(t, client, srv.URL+"/repos/a/b")
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, name := range []string{host, srv.URL, srv.URL + "/anything"} {
		st, err := tr.Status(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Found || len(st.Scopes) != 1 || st.Scopes[0].Quota.Limit != 5000 || st.Utilization() < 0.19 {
			t.Fatalf("Status(%q) = %+v; want the core scope's quota", name, st)
		}
	}
	st, err := tr.Status(context.Background(), "never.example.com")
	if err != nil || st.Found {
		t.Fatalf("status of an unknown host: %+v, %v; want Found false", st, err)
	}
}

// Issue 11 item 14: hosts are compared in canonical form.
func TestHostLimitsApplyToEverySpelling(t *testing.T) {
	for _, tc := range []struct{ scheme, host, want string }{
		{"https", "API.Example.com", "api.example.com"},
		{"https", "api.example.com:443", "api.example.com"},
		{"http", "api.example.com:80", "api.example.com"},
		{"https", "api.example.com:80", "api.example.com:80"},
		{"", "api.example.com.:443", "api.example.com"},
		{"https", "[::1]:443", "[::1]"},
		{"http", "[::1]:8080", "[::1]:8080"},
	} {
		if got := CanonicalHost(tc.scheme, tc.host); got != tc.want {
			t.Errorf("CanonicalHost(%q, %q) = %q, want %q", tc.scheme, tc.host, got, tc.want)
		}
	}
	srv, hits := headerServer(t, http.StatusOK, nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	client := New(WithHostLimits(strings.ToUpper(host), srl.PerMinute(1)), WithRaiseOnLimit())
	if _, err := get(t, client, srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, client, "http://"+strings.Replace(host, "127.0.0.1", "127.0.0.1.", 1)); !errors.Is(err, srl.ErrRateLimited) {
		t.Fatalf("a second spelling of the host: %v after %d hits; want the host's limit", err, hits.Load())
	}
}

// Issue 11 item 16: Close on an in-memory transport makes later requests
// fail, and Close and Status need no type assertion.
func TestCloseInMemory(t *testing.T) {
	srv, _ := headerServer(t, http.StatusOK, nil)
	client := New()
	tr := TransportOf(client)
	if tr == nil {
		t.Fatal("TransportOf(New()) = nil")
	}
	if _, err := get(t, client, srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get(srv.URL); !errors.Is(err, srl.ErrClosed) {
		t.Fatalf("a request after Close: %v", err)
	}
	if _, err := tr.Status(context.Background(), srv.URL); !errors.Is(err, srl.ErrClosed) {
		t.Fatalf("Status after Close: %v", err)
	}
	if TransportOf(http.DefaultClient) != nil {
		t.Fatal("TransportOf a plain client must be nil")
	}
}

// Issue 11 item 7: the announced-quota memory is bounded, whatever the
// number of keys.
func TestLearnedLimitsAreBounded(t *testing.T) {
	var l learnedLimits
	for i := 0; i < 1_000_000; i++ {
		l.changed("key-"+strconv.Itoa(i), 10)
	}
	if n := len(l.m); n > maxLearned {
		t.Fatalf("%d keys remembered, want at most %d", n, maxLearned)
	}
	if !l.changed("fresh", 1) || l.changed("fresh", 1) || !l.changed("fresh", 2) {
		t.Fatal("changed must report a new or different limit once")
	}
}
