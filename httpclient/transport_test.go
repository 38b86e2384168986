package httpclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/internal/fakeapi"
)

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func newRequest(t *testing.T, ctx context.Context, method, url string, body *trackedBody) *http.Request {
	t.Helper()
	var rc io.ReadCloser
	if body != nil {
		rc = body
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rc)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// headerServer answers every request with the given status and headers.
func headerServer(t *testing.T, status int, h map[string]string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		for k, v := range h {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestLearnsTheQuotaFromHeaders(t *testing.T) {
	api := &fakeapi.Server{Limit: 3, Window: time.Minute}
	srv := httptest.NewServer(api)
	defer srv.Close()
	client := New(WithRaiseOnLimit())
	for i := 0; i < 3; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %v, %v", i, resp, err)
		}
		resp.Body.Close()
	}
	_, err := client.Get(srv.URL)
	var le *srl.LimitError
	if !errors.As(err, &le) || !errors.Is(err, srl.ErrRateLimited) || le.Cause != srl.CauseQuota || le.RetryAfter < 55*time.Second {
		t.Fatalf("fourth request: %v, want a LimitError by quota for ~1m", err)
	}
	if c := api.Counts(); c.Requests != 3 || c.Limited != 0 {
		t.Fatalf("the server saw %+v; the fourth request must not have been sent", c)
	}
	st, err := client.Transport.(*Transport).Status(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	if err != nil || !st.Quota.Known || st.Quota.Limit != 3 || st.Quota.Remaining != 0 || st.Utilization() != 1 {
		t.Fatalf("status: %+v, %v", st, err)
	}
}

// TestRetryAfterBlocksEveryone: a 429 with Retry-After seen by one client
// blocks the others sharing the backend.
func TestRetryAfterBlocksEveryone(t *testing.T) {
	srv, hits := headerServer(t, http.StatusTooManyRequests, map[string]string{"Retry-After": "30"})
	shared := fallback.New()
	a := New(WithBackend(shared), WithRaiseOnLimit())
	b := New(WithBackend(shared), WithRaiseOnLimit())
	resp, err := a.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the 429 itself must come back as a response: %v, %v", resp, err)
	}
	resp.Body.Close()
	_, err = b.Get(srv.URL)
	var le *srl.LimitError
	if !errors.As(err, &le) || le.Cause != srl.CauseBlocked || le.RetryAfter < 29*time.Second {
		t.Fatalf("the other client: %v, want a block of ~30s", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("the server got %d requests, want 1", hits.Load())
	}
}

// TestServerClockAhead: a server whose clock is 5 minutes ahead says the
// same thing as one in sync, because every time is measured against its
// own Date header.
func TestServerClockAhead(t *testing.T) {
	for _, skew := range []time.Duration{0, 5 * time.Minute, -5 * time.Minute} {
		now := time.Now().Add(skew)
		srv, _ := headerServer(t, http.StatusOK, map[string]string{
			"Date":                  now.UTC().Format(http.TimeFormat),
			"X-RateLimit-Limit":     "10",
			"X-RateLimit-Remaining": "0",
			"X-RateLimit-Reset":     strconv.FormatInt(now.Add(40*time.Second).Unix(), 10),
		})
		client := New(WithRaiseOnLimit())
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, err = client.Get(srv.URL)
		var le *srl.LimitError
		if !errors.As(err, &le) || le.RetryAfter < 38*time.Second || le.RetryAfter > 41*time.Second {
			t.Fatalf("server clock off by %v: %v, want a wait of ~40s", skew, err)
		}
	}
}

func TestDefaultLimitsUntilTheServerSays(t *testing.T) {
	var advertise atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if advertise.Load() {
			w.Header().Set("X-RateLimit-Limit", "100")
			w.Header().Set("X-RateLimit-Remaining", "99")
			w.Header().Set("X-RateLimit-Reset", "60")
		}
	}))
	defer srv.Close()
	client := New(WithDefaultLimits(srl.PerMinute(1)), WithRaiseOnLimit())
	get := func() error {
		resp, err := client.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if err := get(); !errors.Is(err, srl.ErrRateLimited) {
		t.Fatalf("second request under a default of 1/min: %v", err)
	}
	// Teach the server's quota through another key-sharing client.
	advertise.Store(true)
	teacher := New(WithBackend(client.Transport.(*Transport).backend))
	if resp, err := teacher.Get(srv.URL); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	for i := 0; i < 5; i++ {
		if err := get(); err != nil {
			t.Fatalf("request %d once the server advertised 100: %v", i, err)
		}
	}
}

func TestRaiseOnLimitClosesTheBody(t *testing.T) {
	srv, hits := headerServer(t, http.StatusOK, nil)
	tr := NewTransport(nil, WithLimits(srl.PerHour(1)), WithRaiseOnLimit())
	ctx := context.Background()
	first := &trackedBody{Reader: strings.NewReader("one")}
	resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodPost, srv.URL, first))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	second := &trackedBody{Reader: strings.NewReader("two")}
	_, err = tr.RoundTrip(newRequest(t, ctx, http.MethodPost, srv.URL, second))
	if !errors.Is(err, srl.ErrRateLimited) {
		t.Fatalf("second request: %v", err)
	}
	if !first.closed.Load() || !second.closed.Load() {
		t.Fatalf("bodies closed: sent %v, rejected %v; both must be", first.closed.Load(), second.closed.Load())
	}
	if hits.Load() != 1 {
		t.Fatalf("server hits %d", hits.Load())
	}
}

func TestRequestIsNotModified(t *testing.T) {
	srv, _ := headerServer(t, http.StatusTooManyRequests, map[string]string{"Retry-After": "0"})
	tr := NewTransport(nil, WithRetry(RetryPolicy{MaxRetries: 2, Strategy: Fixed, BaseDelay: time.Millisecond, RetryOn: []int{429}}))
	body := []byte("payload")
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/x?a=1", bytes.NewReader(body))
	req.Header.Set("X-Custom", "v")
	before := req.Clone(context.Background())
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.URL.String() != before.URL.String() || req.Method != before.Method || len(req.Header) != len(before.Header) || req.Header.Get("X-Custom") != "v" {
		t.Fatalf("request changed: %+v", req)
	}
}

func TestRetriesRebuildBodies(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		n := len(got)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	policy := RetryPolicy{MaxRetries: 3, Strategy: Fixed, BaseDelay: time.Millisecond, RetryOn: []int{503}}

	// PUT is idempotent and bytes.Reader bodies get GetBody: retried whole.
	req, _ := http.NewRequest(http.MethodPut, srv.URL, bytes.NewReader([]byte("hello")))
	resp, err := New(WithRetry(policy)).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with retries: %v, %v", resp, err)
	}
	resp.Body.Close()
	if strings.Join(got, ",") != "hello,hello,hello" {
		t.Fatalf("the server received %q", got)
	}

	// POST is not retried by default...
	got = nil
	req, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader([]byte("once")))
	resp, err = New(WithRetry(policy)).Do(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || len(got) != 1 {
		t.Fatalf("POST: %v, %v after %d sends, want the 503 after one", resp, err, len(got))
	}
	resp.Body.Close()

	// ...nor is a body that cannot be rebuilt.
	got = nil
	opaque := &trackedBody{Reader: strings.NewReader("opaque")}
	req, _ = http.NewRequest(http.MethodPut, srv.URL, opaque)
	resp, err = New(WithRetry(policy)).Do(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || len(got) != 1 || !opaque.closed.Load() {
		t.Fatalf("PUT without GetBody: %v, %v after %d sends (closed %v)", resp, err, len(got), opaque.closed.Load())
	}
	resp.Body.Close()

	// POST with an opt-in and GetBody is.
	got = nil
	policy.RetryNonIdempotent = true
	req, _ = http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("again"))
	resp, err = New(WithRetry(policy)).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || strings.Join(got, ",") != "again,again,again" {
		t.Fatalf("POST opted in: %v, %v, server got %q", resp, err, got)
	}
	resp.Body.Close()
}

// TestRetryAfterPastMaxWaitReturnsTheResponse: the server asks for more
// than we may wait, so the 429 is returned, not swallowed.
func TestRetryAfterPastMaxWaitReturnsTheResponse(t *testing.T) {
	srv, hits := headerServer(t, http.StatusTooManyRequests, map[string]string{"Retry-After": "120"})
	client := New(WithRetry(DefaultRetryPolicy), WithMaxWait(time.Second))
	start := time.Now()
	resp, err := client.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%v, %v; want the 429 response", resp, err)
	}
	resp.Body.Close()
	if hits.Load() != 1 || time.Since(start) > time.Second {
		t.Fatalf("%d requests in %v; the retry must be skipped at once", hits.Load(), time.Since(start))
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	client := New(WithRetry(RetryPolicy{MaxRetries: 1, Strategy: Fixed, BaseDelay: time.Millisecond, RetryOn: []int{429}}))
	start := time.Now()
	resp, err := client.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v, %v", resp, err)
	}
	resp.Body.Close()
	if took := time.Since(start); took < time.Second {
		t.Fatalf("retried after %v; the server asked for 1s", took)
	}
}

func TestCancellationMidWaitReturnsPromptly(t *testing.T) {
	srv, _ := headerServer(t, http.StatusOK, nil)
	client := New(WithLimits(srl.PerMinute(1)), WithMaxWait(time.Hour))
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	body := &trackedBody{Reader: strings.NewReader("x")}
	start := time.Now()
	_, err = client.Do(newRequest(t, ctx, http.MethodPut, srv.URL, body))
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("cancelled mid-wait: %v after %v", err, time.Since(start))
	}
	if !body.closed.Load() {
		t.Fatal("the body of a cancelled request was not closed")
	}
}

func TestWaitPastDeadlineFailsAtOnce(t *testing.T) {
	srv, _ := headerServer(t, http.StatusOK, nil)
	client := New(WithLimits(srl.PerMinute(1)))
	resp, _ := client.Get(srv.URL)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Do(newRequest(t, ctx, http.MethodGet, srv.URL, nil))
	var le *srl.LimitError
	if !errors.As(err, &le) || !le.Deadline || ctx.Err() != nil {
		t.Fatalf("%v; want a LimitError at once, not a wait until the deadline", err)
	}
}

// headerTransport adds a header to every request, as an auth transport
// would.
type headerTransport struct{ base http.RoundTripper }

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer secret-token")
	return h.base.RoundTrip(req)
}

func TestWrapKeepsTheClient(t *testing.T) {
	var seenAuth, seenCookie atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenAuth.Store(r.Header.Get("Authorization"))
		if c, err := r.Cookie("session"); err == nil {
			seenCookie.Store(c.Value)
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1"})
	}))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	orig := &http.Client{Jar: jar, Timeout: 7 * time.Second, Transport: headerTransport{http.DefaultTransport}}
	wrapped := Wrap(orig, WithLimits(srl.PerHour(2).WithBurst(2)), WithRaiseOnLimit())
	if wrapped.Jar != jar || wrapped.Timeout != 7*time.Second || orig.Transport == wrapped.Transport {
		t.Fatalf("Wrap lost the jar or timeout, or changed the original: %+v", wrapped)
	}
	if _, ok := orig.Transport.(headerTransport); !ok {
		t.Fatal("Wrap changed the original client's transport")
	}
	for i := 0; i < 2; i++ {
		resp, err := wrapped.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if seenAuth.Load() != "Bearer secret-token" || seenCookie.Load() != "s1" {
		t.Fatalf("through the wrapped client the server saw auth %v, cookie %v", seenAuth.Load(), seenCookie.Load())
	}
	if _, err := wrapped.Get(srv.URL); !errors.Is(err, srl.ErrRateLimited) {
		t.Fatalf("the wrapped client is not limited: %v", err)
	}
}

func TestCustomHeaderMap(t *testing.T) {
	srv, _ := headerServer(t, http.StatusOK, map[string]string{
		"X-MyAPI-Limit": "50", "X-MyAPI-Remaining": "0", "X-MyAPI-Reset": "20",
	})
	client := New(WithHeaderMap(HeaderMap{Limit: "X-MyAPI-Limit", Remaining: "X-MyAPI-Remaining", Reset: "X-MyAPI-Reset"}), WithRaiseOnLimit())
	resp, _ := client.Get(srv.URL)
	resp.Body.Close()
	_, err := client.Get(srv.URL)
	var le *srl.LimitError
	if !errors.As(err, &le) || le.Cause != srl.CauseQuota || le.RetryAfter < 19*time.Second {
		t.Fatalf("custom headers not learned: %v", err)
	}
}

func TestSafetyReserve(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		left := 12 - served.Add(1) + 1
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", strconv.FormatInt(max(left, 0), 10))
		w.Header().Set("X-RateLimit-Reset", "60")
	}))
	defer srv.Close()
	client := New(WithSafetyReserve(0.1), WithRaiseOnLimit())
	resp, _ := client.Get(srv.URL)
	resp.Body.Close()
	admitted := 0
	for i := 0; i < 10; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			break
		}
		resp.Body.Close()
		admitted++
	}
	// 12 left, 10 kept back: 2 more.
	if admitted != 2 {
		t.Fatalf("admitted %d with 12 left and a 10%% reserve of 100, want 2", admitted)
	}
}

func TestCachedResponsesAreIgnored(t *testing.T) {
	srv, _ := headerServer(t, http.StatusOK, map[string]string{
		"Age": "30", "X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60",
	})
	client := New(WithRaiseOnLimit())
	for i := 0; i < 3; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("request %d: a cached response's headers were learned: %v", i, err)
		}
		resp.Body.Close()
	}
}

func TestKeyByCredential(t *testing.T) {
	f := KeyByCredential("Authorization", []byte("fleet secret"))
	req := func(token string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://API.example.com/v1/x", nil)
		if token != "" {
			r.Header.Set("Authorization", token)
		}
		return r
	}
	a, b, none := f(req("Bearer alpha")), f(req("Bearer beta")), f(req(""))
	if a == b || strings.Contains(a, "alpha") || !strings.HasPrefix(a, "api.example.com|") || len(a) != len("api.example.com|")+32 {
		t.Fatalf("keys %q and %q", a, b)
	}
	if none != "api.example.com" || f(req("Bearer alpha")) != a {
		t.Fatalf("key without a credential %q; keys must be stable", none)
	}
}

// TestScopesKeepBucketsApart: GitHub reports the search bucket's 30 per
// minute on search responses; it must not throttle the core API.
func TestScopesKeepBucketsApart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		reset := strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)
		if strings.HasPrefix(r.URL.Path, "/search/") {
			h.Set("X-RateLimit-Limit", "30")
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Resource", "search")
		} else {
			h.Set("X-RateLimit-Limit", "5000")
			h.Set("X-RateLimit-Remaining", "4999")
			h.Set("X-RateLimit-Resource", "core")
		}
		h.Set("X-RateLimit-Reset", reset)
	}))
	defer srv.Close()
	client := New(WithRaiseOnLimit())
	get := func(path string) error {
		resp, err := client.Get(srv.URL + path)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get("/search/issues"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := get("/repos/x/y"); err != nil {
			t.Fatalf("core request %d after search was spent: %v", i, err)
		}
	}
	if err := get("/search/code"); !errors.Is(err, srl.ErrRateLimited) {
		t.Fatalf("search after its bucket was spent: %v", err)
	}
}

func TestInvalidOptionsFailRequests(t *testing.T) {
	srv, hits := headerServer(t, http.StatusOK, nil)
	for _, opt := range []Option{WithMaxWait(0), WithSafetyReserve(1.5), WithLimits(srl.Limit{}), WithKeyFunc(nil), WithRedis(nil), WithBackend(nil)} {
		body := &trackedBody{Reader: strings.NewReader("x")}
		_, err := New(opt).Do(newRequest(t, context.Background(), http.MethodPut, srv.URL, body))
		if err == nil || !strings.Contains(err.Error(), "httpclient: ") || !body.closed.Load() {
			t.Errorf("invalid option: %v (body closed %v)", err, body.closed.Load())
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests were sent despite invalid options", hits.Load())
	}
}

func TestRetryPolicyDelays(t *testing.T) {
	tests := []struct {
		p    RetryPolicy
		want []time.Duration
	}{
		{RetryPolicy{Strategy: Exponential, BaseDelay: time.Second, Factor: 2, MaxDelay: 5 * time.Second}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}},
		{RetryPolicy{Strategy: Linear, BaseDelay: time.Second}, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}},
		{RetryPolicy{Strategy: Fixed, BaseDelay: time.Second}, []time.Duration{time.Second, time.Second, time.Second, time.Second}},
		{RetryPolicy{Strategy: Exponential, BaseDelay: time.Second, Factor: 1e6}, []time.Duration{time.Second, 1e6 * time.Second, time.Duration(1<<63 - 1), time.Duration(1<<63 - 1)}},
	}
	for _, tc := range tests {
		for i, want := range tc.want {
			if got := tc.p.Delay(i + 1); got != want {
				t.Errorf("%v attempt %d: %v, want %v", tc.p.Strategy, i+1, got, want)
			}
		}
	}
	jittered := RetryPolicy{Strategy: Fixed, BaseDelay: time.Second, Jitter: 0.5}
	for i := 0; i < 100; i++ {
		if d := jittered.Delay(1); d < 500*time.Millisecond || d > 1500*time.Millisecond {
			t.Fatalf("jittered delay %v outside [0.5s, 1.5s]", d)
		}
	}
}

// TestEveryDialectThroughTheTransport: a server speaking each dialect says
// its budget is spent; the client learns it from the first response and
// refuses the second request for about the time the server named.
func TestEveryDialectThroughTheTransport(t *testing.T) {
	in := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }
	tests := []struct {
		name   string
		status int
		h      map[string]string
		wait   time.Duration
	}{
		{"GitHub", 200, map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": in(40 * time.Second)}, 40 * time.Second},
		{"GitHub 403", 403, map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": in(40 * time.Second)}, 40 * time.Second},
		{"Okta", 200, map[string]string{"X-Rate-Limit-Limit": "100", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": in(40 * time.Second)}, 40 * time.Second},
		{"OpenAI", 200, map[string]string{"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "40s"}, 40 * time.Second},
		{"Anthropic", 200, map[string]string{"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
			"anthropic-ratelimit-requests-reset": time.Now().Add(40 * time.Second).UTC().Format(time.RFC3339)}, 40 * time.Second},
		{"IETF draft-08", 200, map[string]string{"RateLimit": `"default";r=0;t=40`, "RateLimit-Policy": `"default";q=100;w=60`}, 40 * time.Second},
		{"IETF draft-07", 200, map[string]string{"RateLimit": "limit=100, remaining=0, reset=40"}, 40 * time.Second},
		{"IETF draft-06", 200, map[string]string{"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "40"}, 40 * time.Second},
		{"Discord", 200, map[string]string{"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "40.5"}, 40500 * time.Millisecond},
		{"Shopify", 429, map[string]string{"X-Shopify-Shop-Api-Call-Limit": "40/40", "Retry-After": "2.0"}, 20 * time.Second},
		{"Retry-After date", 503, map[string]string{"Retry-After": time.Now().Add(40 * time.Second).UTC().Format(http.TimeFormat)}, 40 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := headerServer(t, tc.status, tc.h)
			client := New(WithRaiseOnLimit())
			resp, err := client.Get(srv.URL)
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("first request: %v, %v", resp, err)
			}
			resp.Body.Close()
			_, err = client.Get(srv.URL)
			var le *srl.LimitError
			if !errors.As(err, &le) || le.RetryAfter < tc.wait-2*time.Second || le.RetryAfter > tc.wait+time.Second {
				t.Fatalf("second request: %v; want a refusal for about %v", err, tc.wait)
			}
			if hits.Load() != 1 {
				t.Fatalf("the server got %d requests", hits.Load())
			}
		})
	}
}
