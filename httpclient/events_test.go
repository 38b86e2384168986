package httpclient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// recorder keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []srl.Event
}

func (r *recorder) Event(e srl.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) of(kind srl.EventKind) []srl.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []srl.Event
	for _, e := range r.events {
		if e.Kind == kind {
			found = append(found, e)
		}
	}
	return found
}

func (r *recorder) count(kind srl.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func TestEventsFireOncePerTransition(t *testing.T) {
	var limit atomic.Value
	limit.Store("100")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", limit.Load().(string))
		w.Header().Set("X-RateLimit-Remaining", "50")
		w.Header().Set("X-RateLimit-Reset", "60")
		if r.URL.Path == "/garbage" {
			w.Header().Set("RateLimit", "limit=banana")
		}
		if r.URL.Path == "/slow-down" {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	rec := &recorder{}
	client := New(WithObserver(rec))
	get := func(path string) {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for i := 0; i < 3; i++ {
		get("/")
	}
	if n := rec.count(srl.EventQuotaLearned); n != 1 {
		t.Fatalf("%d quota-learned events for one limit seen three times, want 1", n)
	}
	limit.Store("200")
	get("/")
	get("/")
	if n := rec.count(srl.EventQuotaLearned); n != 2 {
		t.Fatalf("%d quota-learned events after the limit changed once, want 2", n)
	}
	if n := rec.count(srl.EventQuotaSeen); n != 5 {
		t.Fatalf("%d quota-seen events for 5 responses", n)
	}
	get("/garbage")
	if n := rec.count(srl.EventHeaderMalformed); n != 1 {
		t.Fatalf("%d malformed events, want 1", n)
	}
	get("/slow-down")
	if n := rec.count(srl.EventBlocked); n != 1 {
		t.Fatalf("%d blocked events, want 1", n)
	}
	if s, r := rec.count(srl.EventSent), rec.count(srl.EventResponse); s != 7 || r != 7 {
		t.Fatalf("%d sent and %d response events for 7 requests", s, r)
	}
	// The block makes the next request wait, and says so.
	get("/")
	if n := rec.count(srl.EventWaited); n != 1 {
		t.Fatalf("%d waited events after a 1s block, want 1", n)
	}
}

func TestLimitedEvent(t *testing.T) {
	srv, _ := headerServer(t, http.StatusOK, nil)
	rec := &recorder{}
	client := New(WithObserver(rec), WithLimits(srl.PerHour(1)), WithRaiseOnLimit())
	resp, _ := client.Get(srv.URL)
	resp.Body.Close()
	if _, err := client.Get(srv.URL); !errors.Is(err, srl.ErrRateLimited) {
		t.Fatal(err)
	}
	if n := rec.count(srl.EventLimited); n != 1 {
		t.Fatalf("%d limited events, want 1", n)
	}
}

// TestLoggerNeverLogsURLsOrCredentials: the logger hears what matters and
// never the request's query, path or credentials.
func TestLoggerNeverLogsURLsOrCredentials(t *testing.T) {
	srv, _ := headerServer(t, http.StatusTooManyRequests, map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "-5"})
	var buf bytes.Buffer
	client := New(WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithKeyFunc(KeyByCredential("Authorization", []byte("k"))), WithMaxWait(50*time.Millisecond))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/private/path?token=s3cr3t", nil)
	req.Header.Set("Authorization", "Bearer hunter2")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := buf.String()
	if !strings.Contains(out, "server blocked the key") {
		t.Fatalf("the block was not logged:\n%s", out)
	}
	for _, secret := range []string{"s3cr3t", "hunter2", "/private/path", "token="} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log contains %q:\n%s", secret, out)
		}
	}
}
