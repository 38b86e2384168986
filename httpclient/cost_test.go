package httpclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
)

func costRequest(t *testing.T, method, contentType, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func tokens(in, out int) []srl.Cost {
	return []srl.Cost{{Unit: srl.UnitTokens, N: in + out}, {Unit: srl.UnitInputTokens, N: in}, {Unit: srl.UnitOutputTokens, N: out}}
}

func TestEstimateLLM(t *testing.T) {
	long := strings.Repeat("x", MaxCostBody)
	for _, tc := range []struct {
		name       string
		method, ct string
		url        string
		header     map[string]string
		body       string
		model      string
		costs      []srl.Cost
		wantRecogn bool
	}{
		{name: "openai chat", method: "POST", ct: "application/json",
			body:  `{"model":"gpt-4.1","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello to the world"}],"max_tokens":256}`,
			model: "gpt-4.1", costs: tokens(8, 256), wantRecogn: true}, // 9+22 chars → 31/4 ↑ 8
		{name: "content parts", method: "POST", ct: "application/json; charset=utf-8",
			body:  `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}],"max_completion_tokens":10}`,
			model: "gpt-4o", costs: tokens(1, 10), wantRecogn: true},
		{name: "anthropic", method: "POST", ct: "application/json", header: map[string]string{"anthropic-version": "2023-06-01"},
			body:  `{"model":"claude-sonnet-4-5","system":"You are terse.","max_tokens":1024,"messages":[{"role":"user","content":[{"type":"text","text":"héllo wörld"}]}]}`,
			model: "claude-sonnet-4-5", costs: tokens(7, 1024)[1:], wantRecogn: true}, // 14 + 11 runes → 25/4 ↑ 7
		{name: "anthropic by host", method: "POST", ct: "application/json", url: "https://api.anthropic.com/v1/messages",
			body:  `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"abcd"}]}`,
			model: "claude-haiku-4-5", costs: tokens(1, 10)[1:], wantRecogn: true},
		{name: "responses api", method: "POST", ct: "application/json",
			body:  `{"model":"o3","input":"12345678","max_output_tokens":100}`,
			model: "o3", costs: tokens(2, 100), wantRecogn: true},
		{name: "completions with n", method: "POST", ct: "",
			body:  `{"model":"gpt-3.5-turbo-instruct","prompt":["ab","cd"],"max_tokens":5,"n":3}`,
			model: "gpt-3.5-turbo-instruct", costs: tokens(1, 15), wantRecogn: true},
		{name: "no max tokens", method: "POST", ct: "application/json",
			body:  `{"model":"llama-3.3-70b-versatile","messages":[{"role":"user","content":"abcdefgh"}]}`,
			model: "llama-3.3-70b-versatile", costs: tokens(2, 0), wantRecogn: true},
		{name: "negative max tokens ignored", method: "POST", ct: "application/json",
			body:  `{"model":"m","messages":"abcd","max_tokens":-5}`,
			model: "m", costs: tokens(1, 0), wantRecogn: true},
		{name: "GET", method: "GET", ct: "application/json", body: `{"model":"gpt-4.1","messages":[]}`},
		{name: "not JSON", method: "POST", ct: "text/plain", body: `{"model":"gpt-4.1","messages":[]}`},
		{name: "malformed JSON", method: "POST", ct: "application/json", body: `{"model":"gpt-4.1","messages":[`},
		{name: "no model", method: "POST", ct: "application/json", body: `{"messages":[{"content":"hi"}]}`},
		{name: "model that is no name", method: "POST", ct: "application/json", body: `{"model":"a b\u0000c","messages":"hi"}`},
		{name: "no text fields", method: "POST", ct: "application/json", body: `{"model":"gpt-4.1","foo":"bar"}`},
		{name: "not an object", method: "POST", ct: "application/json", body: `[1,2,3]`},
		{name: "cut off at the bound", method: "POST", ct: "application/json", body: `{"model":"gpt-4.1","messages":"` + long + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := costRequest(t, tc.method, tc.ct, tc.body)
			if tc.url != "" {
				req.URL, _ = url.Parse(tc.url)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			body := []byte(tc.body)
			if len(body) > MaxCostBody {
				body = body[:MaxCostBody]
			}
			got, ok := EstimateLLM(req, body)
			if ok != tc.wantRecogn {
				t.Fatalf("recognised %v, want %v (%+v)", ok, tc.wantRecogn, got)
			}
			if !ok {
				return
			}
			if got.Model != tc.model || !reflect.DeepEqual(got.Costs, tc.costs) {
				t.Fatalf("got %q %v; want %q %v", got.Model, got.Costs, tc.model, tc.costs)
			}
		})
	}
}

// llmServer answers like an OpenAI-style API, recording every body and
// the model it named, and advertising per-model token quotas.
type llmServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newLLMServer(t *testing.T, header map[string]string) *llmServer {
	t.Helper()
	s := &llmServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// The body is read to estimate its cost, and the server still receives it
// whole, whether or not the request can rebuild it.
func TestCostEstimateDoesNotConsumeTheBody(t *testing.T) {
	srv := newLLMServer(t, nil)
	body := `{"model":"gpt-4.1","messages":[{"role":"user","content":"` + strings.Repeat("y", 5000) + `"}],"max_tokens":7}`
	tr := NewTransport(nil)
	for _, rebuildable := range []bool{true, false} {
		var rc io.Reader = strings.NewReader(body)
		if !rebuildable {
			rc = &trackedBody{Reader: strings.NewReader(body)}
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", rc)
		req.Header.Set("Content-Type", "application/json")
		if rebuildable != (req.GetBody != nil) {
			t.Fatalf("set-up: GetBody %v", req.GetBody != nil)
		}
		original := req.Body
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Body != original {
			t.Fatal("the caller's request was modified")
		}
		if tb, ok := original.(*trackedBody); ok && !tb.closed.Load() {
			t.Fatal("the body read ahead was not closed")
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.bodies) != 2 || srv.bodies[0] != body || srv.bodies[1] != body {
		t.Fatalf("the server received %d bodies, first %d bytes; want 2 × %d", len(srv.bodies), len(srv.bodies[0]), len(body))
	}
}

// A body longer than the bound is sent whole, and counts one request.
func TestLongBodyIsSentWholeAndCountsARequest(t *testing.T) {
	srv := newLLMServer(t, nil)
	body := `{"model":"gpt-4.1","messages":"` + strings.Repeat("z", MaxCostBody) + `"}`
	rec := &recorder{}
	tr := NewTransport(nil, WithObserver(rec))
	req, _ := http.NewRequest(http.MethodPost, srv.URL, &trackedBody{Reader: strings.NewReader(body)})
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(srv.bodies) != 1 || srv.bodies[0] != body {
		t.Fatal("the server did not receive the whole body")
	}
	sent := rec.of(srl.EventSent)
	if len(sent) != 1 || len(sent[0].Costs) != 1 || sent[0].Key != HostKey(req) {
		t.Fatalf("sent %+v; want one request under the host's key", sent)
	}
}

// Each model spends from its own budget: the first model's spent token
// quota does not hold the second's requests.
func TestModelsHaveSeparateBudgets(t *testing.T) {
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		model := "gpt-b"
		if bytes.Contains(b, []byte("gpt-a")) {
			model = "gpt-a"
		}
		n, _ := hits.LoadOrStore(model, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		w.Header().Set("x-ratelimit-limit-requests", "100")
		w.Header().Set("x-ratelimit-remaining-requests", "99")
		w.Header().Set("x-ratelimit-reset-requests", "1s")
		w.Header().Set("x-ratelimit-limit-tokens", "1000")
		w.Header().Set("x-ratelimit-reset-tokens", "1m0s")
		if model == "gpt-a" {
			w.Header().Set("x-ratelimit-remaining-tokens", "0")
		} else {
			w.Header().Set("x-ratelimit-remaining-tokens", "900")
		}
	}))
	defer srv.Close()
	tr := NewTransport(nil, WithRaiseOnLimit())
	post := func(model string) error {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"`+model+`","messages":"hi","max_tokens":50}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := post("gpt-a"); err != nil {
		t.Fatal(err)
	}
	var le *srl.LimitError
	if err := post("gpt-a"); !errors.As(err, &le) || le.Cause != srl.CauseQuota {
		t.Fatalf("gpt-a's second request: %v; want a quota refusal (its tokens are spent)", err)
	}
	for i := 0; i < 3; i++ {
		if err := post("gpt-b"); err != nil {
			t.Fatalf("gpt-b request %d: %v; another model's spent budget held it", i, err)
		}
	}
	st, err := tr.Status(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	var keys []string
	for _, sc := range st.Scopes {
		keys = append(keys, sc.Key)
		if len(sc.Quotas) != 2 {
			t.Errorf("%s: quotas %+v; want requests and tokens", sc.Key, sc.Quotas)
		}
	}
	if want := []string{host + "|gpt-a", host + "|gpt-b"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("Status scopes %v; want %v", keys, want)
	}
	if u := st.Utilization(); u != 1 {
		t.Fatalf("Utilization %v; want 1 (gpt-a's tokens are spent)", u)
	}
}

func TestCostOverrides(t *testing.T) {
	srv := newLLMServer(t, nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	body := `{"model":"gpt-4.1","messages":"abcd","max_tokens":10}`
	for _, tc := range []struct {
		name    string
		opts    []Option
		ctxCost *RequestCost
		key     string
		costs   []srl.Cost
	}{
		{name: "default", key: host + "|gpt-4.1", costs: append([]srl.Cost{{Unit: srl.UnitRequests, N: 1}}, tokens(1, 10)...)},
		{name: "NoCost", opts: []Option{WithCost(NoCost)}, key: host, costs: []srl.Cost{{Unit: srl.UnitRequests, N: 1}}},
		{name: "client func", opts: []Option{WithCost(func(*http.Request, []byte) (RequestCost, bool) {
			return RequestCost{Costs: []srl.Cost{{Unit: "bytes", N: 42}}}, true
		})}, key: host, costs: []srl.Cost{{Unit: srl.UnitRequests, N: 1}, {Unit: "bytes", N: 42}}},
		{name: "context wins", ctxCost: &RequestCost{Model: "counted", Costs: []srl.Cost{{Unit: srl.UnitTokens, N: 3}}},
			key: host + "|counted", costs: []srl.Cost{{Unit: srl.UnitRequests, N: 1}, {Unit: srl.UnitTokens, N: 3}}},
		{name: "a model that is no name is dropped", opts: []Option{WithCost(func(*http.Request, []byte) (RequestCost, bool) {
			return RequestCost{Model: "bad model\n"}, true
		})}, key: host, costs: []srl.Cost{{Unit: srl.UnitRequests, N: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			tr := NewTransport(nil, append(tc.opts, WithObserver(rec))...)
			ctx := context.Background()
			if tc.ctxCost != nil {
				ctx = WithRequestCost(ctx, *tc.ctxCost)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			sent := rec.of(srl.EventSent)
			if len(sent) != 1 || sent[0].Key != tc.key || !reflect.DeepEqual(sent[0].Costs, tc.costs) {
				t.Fatalf("sent %+v; want key %q costs %v", sent, tc.key, tc.costs)
			}
		})
	}
	if tr := NewTransport(nil, WithCost(nil)); tr.usable() == nil {
		t.Fatal("WithCost(nil) accepted")
	}
}

// failingTransport fails every request with err.
type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody(req)
	return nil, f.err
}

// A request that never reached the server gives its estimate back; one
// that may have reached it does not.
func TestUnsentRequestsAreRefunded(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name     string
		err      error
		refunded bool
	}{
		{"refused connection", dialErr, true},
		{"failed lookup", &net.DNSError{Err: "no such host", Name: "api.openai.com", IsNotFound: true}, true},
		{"reset mid-request", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, false},
		{"timeout", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := fallback.New()
			ctx := context.Background()
			key := "api.openai.com|gpt-4.1"
			// The quota is known, so the admission spends from it.
			if err := backend.Observe(ctx, key, srl.Observation{Limit: 100, Remaining: 100, Reset: time.Minute,
				Quotas: []srl.QuotaObservation{{Unit: srl.UnitTokens, Limit: 10000, Remaining: 10000, Reset: time.Minute}}}); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			tr := NewTransport(failingTransport{tc.err}, WithBackend(backend), WithObserver(rec))
			req := costRequest(t, http.MethodPost, "application/json", `{"model":"gpt-4.1","messages":"abcd","max_tokens":999}`)
			if _, err := tr.RoundTrip(req); err == nil {
				t.Fatal("no error")
			}
			st, err := backend.Peek(ctx, srl.Request{Key: key})
			if err != nil {
				t.Fatal(err)
			}
			left := map[string]int{}
			for _, q := range st.Quotas {
				left[q.Unit] = q.Remaining
			}
			wantTokens, wantRequests := 10000-1000, 99
			if tc.refunded {
				wantTokens, wantRequests = 10000, 100
			}
			if left[srl.UnitTokens] != wantTokens || left[srl.UnitRequests] != wantRequests {
				t.Fatalf("left %v; want %d tokens, %d requests", left, wantTokens, wantRequests)
			}
			if got := len(rec.of(srl.EventRefunded)) == 1; got != tc.refunded {
				t.Fatalf("refund event %v, want %v", got, tc.refunded)
			}
		})
	}
}

func TestServerSaysWhetherToRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		status int
		header map[string]string
		sends  int64
	}{
		{"429 the server says not to retry", http.MethodGet, 429, map[string]string{"x-should-retry": "false"}, 1},
		{"500 the server says to retry", http.MethodGet, 500, map[string]string{"x-should-retry": "true"}, 3},
		{"a POST the server says to retry", http.MethodPost, 500, map[string]string{"x-should-retry": "true"}, 3},
		{"Stripe says not to retry", http.MethodGet, 503, map[string]string{"Stripe-Should-Retry": "false"}, 1},
		{"Anthropic overloaded", http.MethodGet, StatusOverloaded, nil, 3},
		{"a POST overloaded is not retried", http.MethodPost, StatusOverloaded, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := headerServer(t, tc.status, tc.header)
			p := DefaultRetryPolicy
			p.MaxRetries, p.BaseDelay, p.Jitter = 2, time.Millisecond, 0
			tr := NewTransport(nil, WithRetry(p))
			req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader("{}"))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || hits.Load() != tc.sends {
				t.Fatalf("status %d after %d sends; want %d after %d", resp.StatusCode, hits.Load(), tc.status, tc.sends)
			}
		})
	}
}
