package httpclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
)

// api starts a local API that allows limit requests per minute, in one
// window that starts with the first request, and says so in its headers as
// GitHub or Stripe would: X-RateLimit-Limit, -Remaining, and -Reset in
// seconds from now.
func api(limit int) (url, host string, stop func()) {
	var mu sync.Mutex
	used, start := 0, time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if start.IsZero() {
			start = time.Now()
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Reset", strconv.Itoa(int(time.Until(start.Add(time.Minute)).Seconds())+1))
		if used >= limit {
			h.Set("X-RateLimit-Remaining", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		used++
		h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-used))
	}))
	return srv.URL, strings.TrimPrefix(srv.URL, "http://"), srv.Close
}

// The simplest use: a client that learns each API's limits from its
// responses and waits when they are spent (the source documents'
// RateLimiter().request).
func Example() {
	url, _, stop := api(100)
	defer stop()

	client := httpclient.New()
	resp, err := client.Get(url)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, "- limit", resp.Header.Get("X-RateLimit-Limit"), "remaining", resp.Header.Get("X-RateLimit-Remaining"))
	// Output: 200 OK - limit 100 remaining 99
}

// Default limits apply to APIs that send no rate-limit headers, several
// windows at once (default_limits): "10 a second, 60 a minute, 1000 an
// hour" lets ten through back to back and refuses the eleventh until the
// second has passed. (The pacing kinds, srl.PerSecond and friends, would
// space every request by the slowest of the three.)
func ExampleWithDefaultLimits() {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()

	client := httpclient.New(
		httpclient.WithDefaultLimits(srl.Window(10, time.Second), srl.Window(60, time.Minute), srl.Window(1000, time.Hour)),
		httpclient.WithRaiseOnLimit(), // show the refusal instead of waiting for it
	)
	admitted := 0
	for i := 1; i <= 11; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			var le *srl.LimitError
			if errors.As(err, &le) {
				// A window counts in tenths of it, each whole until all of
				// it has left: the refusal lasts up to a second and a tenth.
				fmt.Printf("request %d: refused (%v) for about a second: %v\n", i, le.Cause,
					le.RetryAfter > 900*time.Millisecond && le.RetryAfter <= 1100*time.Millisecond)
			}
			continue
		}
		resp.Body.Close()
		admitted++
	}
	fmt.Println("admitted at once:", admitted)
	// Output:
	// request 11: refused (limit) for about a second: true
	// admitted at once: 10
}

// With Redis, every process spends from the same budgets and learns from
// every other process's responses (storage='redis://...').
func ExampleWithRedis() {
	mr, _ := miniredis.Run() // use your Redis: redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer mr.Close()
	url, host, stop := api(2)
	defer stop()

	podA := httpclient.New(httpclient.WithRedis(redis.NewClient(&redis.Options{Addr: mr.Addr()})))
	podB := httpclient.New(httpclient.WithRedis(redis.NewClient(&redis.Options{Addr: mr.Addr()})), httpclient.WithRaiseOnLimit())

	for i := 0; i < 2; i++ {
		resp, _ := podA.Get(url)
		resp.Body.Close()
	}
	// Pod B never called the API, yet knows the budget is spent.
	_, err := podB.Get(url)
	var le *srl.LimitError
	fmt.Println(errors.As(err, &le), le.Cause)
	st, _ := podB.Transport.(*httpclient.Transport).Status(context.Background(), host)
	fmt.Printf("%d of %d left\n", st.Remaining, st.Limit)
	// Output:
	// true quota
	// 0 of 2 left
}

// With a lease, a process takes a few requests of a roomy quota in one
// decision and admits them from memory: most requests make no round trip
// to Redis before they are sent. What a lease did not use goes back to
// the fleet (here on Close), so the fleet's count stays the server's.
func ExampleWithLease() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	url, host, stop := api(5000)
	defer stop()

	var leased atomic.Int64
	pod := httpclient.New(httpclient.WithRedis(redis.NewClient(&redis.Options{Addr: mr.Addr()})), httpclient.WithLease(8),
		httpclient.WithObserver(srl.ObserverFunc(func(e srl.Event) {
			if e.Leased {
				leased.Add(1)
			}
		})))
	for i := 0; i < 20; i++ {
		resp, _ := pod.Get(url)
		resp.Body.Close()
	}
	_ = httpclient.TransportOf(pod).Close()
	fmt.Println("admitted from leases:", leased.Load() > 0)

	other := httpclient.New(httpclient.WithRedis(redis.NewClient(&redis.Options{Addr: mr.Addr()})))
	st, _ := httpclient.TransportOf(other).Status(context.Background(), host)
	fmt.Printf("%d of %d left\n", st.Quota.Remaining, st.Quota.Limit)
	// Output:
	// admitted from leases: true
	// 4980 of 5000 left
}

// Retries for transient failures (RetryConfig with RetryStrategy).
func ExampleWithRetry() {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	policy := httpclient.DefaultRetryPolicy // 3 retries on 429/503/504, exponential from 1s
	policy.BaseDelay = 10 * time.Millisecond
	client := httpclient.New(httpclient.WithRetry(policy))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "after", calls, "calls")
	// Output: 200 OK after 3 calls
}

// Status and utilization of a host's budget (get_status(...).utilization).
func ExampleTransport_Status() {
	url, host, stop := api(10)
	defer stop()

	tr := httpclient.NewTransport(nil)
	client := &http.Client{Transport: tr}
	for i := 0; i < 9; i++ {
		resp, _ := client.Get(url)
		resp.Body.Close()
	}
	st, _ := tr.Status(context.Background(), host)
	fmt.Printf("%d of %d left, utilization %.1f\n", st.Remaining, st.Limit, st.Utilization())
	if st.Utilization() > 0.8 {
		fmt.Println("warning: rate limit nearly exhausted")
	}
	// Output:
	// 1 of 10 left, utilization 0.9
	// warning: rate limit nearly exhausted
}

// Custom header names (headers_map).
func ExampleWithHeaderMap() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-MyAPI-Limit", "1000")
		w.Header().Set("X-MyAPI-Remaining", "0")
		w.Header().Set("X-MyAPI-Reset", "30")
	}))
	defer srv.Close()

	client := httpclient.New(
		httpclient.WithHeaderMap(httpclient.HeaderMap{Limit: "X-MyAPI-Limit", Remaining: "X-MyAPI-Remaining", Reset: "X-MyAPI-Reset"}),
		httpclient.WithRaiseOnLimit(),
	)
	resp, _ := client.Get(srv.URL)
	resp.Body.Close()
	_, err := client.Get(srv.URL)
	var le *srl.LimitError
	if errors.As(err, &le) {
		fmt.Println("spent; retry in about", le.RetryAfter.Round(10*time.Second))
	}
	// Output: spent; retry in about 30s
}

// Raise instead of waiting (raise_on_limit=True, RateLimitExceeded).
func ExampleWithRaiseOnLimit() {
	url, _, stop := api(1)
	defer stop()

	client := httpclient.New(httpclient.WithRaiseOnLimit())
	resp, _ := client.Get(url)
	resp.Body.Close()
	_, err := client.Get(url)
	fmt.Println(errors.Is(err, srl.ErrRateLimited))
	var le *srl.LimitError
	if errors.As(err, &le) {
		fmt.Println("by", le.Cause, "for about", le.RetryAfter.Round(10*time.Second))
	}
	// Output:
	// true
	// by quota for about 1m0s
}

// Wrap an existing client: its cookies, timeout and transport (here one
// that adds an Authorization header) are kept (wrap_session).
func ExampleWrap() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Authorization"))
	}))
	defer srv.Close()

	session := &http.Client{Timeout: 10 * time.Second, Transport: bearer{"token"}}
	client := httpclient.Wrap(session, httpclient.WithDefaultLimits(srl.PerMinute(60)))
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(client.Timeout, resp.Status, string(body))
	// Output: 10s 200 OK Bearer token
}

type bearer struct{ token string }

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(req)
}

// Close releases what the client holds (the context manager's exit).
func ExampleTransport_Close() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close() // the Redis client is yours to close

	client := httpclient.New(httpclient.WithRedis(rdb))
	defer client.Transport.(*httpclient.Transport).Close()
	fmt.Println("ready")
	// Output: ready
}
