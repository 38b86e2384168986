package integration

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/internal/fakeapi"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// fleetRun drives clients × goroutines requests at api for d through
// transports that share Redis, each client with its own connection.
func fleetRun(t *testing.T, url, prefix string, clients, goroutines int, d time.Duration, opts ...httpclient.Option) (errs int64) {
	t.Helper()
	addr := sharedRedis(t)
	var wg sync.WaitGroup
	var failed atomic.Int64
	stop := time.Now().Add(d)
	for c := 0; c < clients; c++ {
		rdb := newClient(t, addr, nil)
		all := append([]httpclient.Option{
			httpclient.WithRedis(rdb, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(2*time.Second)),
			httpclient.WithMaxWait(10 * time.Second),
		}, opts...)
		client := httpclient.New(all...)
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					ctx, cancel := context.WithDeadline(context.Background(), stop)
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					resp, err := client.Do(req)
					cancel()
					var le *srl.LimitError
					switch {
					case err == nil:
					case ctx.Err() != nil:
						return
					case errors.As(err, &le) && le.Deadline:
						// The next slot is after the end of the run.
						return
					default:
						failed.Add(1)
						t.Logf("request error: %v", err)
						continue
					}
					resp.Body.Close()
				}
			}()
		}
	}
	wg.Wait()
	return failed.Load()
}

// TestFleetSharesTheBudget: one pod's first response teaches the whole
// fleet the server's budget: 8 clients × 8 goroutines, each client with its
// own Redis connection, then get no 429 at all and use at least 90% of
// every full window.
func TestFleetSharesTheBudget(t *testing.T) {
	sharedRedis(t)
	api := &fakeapi.Server{Limit: 40, Window: 2 * time.Second}
	srv := httptest.NewServer(api)
	defer srv.Close()
	prefix := uniquePrefix(t)

	// The first response, seen by one client only.
	first := httpclient.New(httpclient.WithRedis(newClient(t, sharedRedis(t), nil), redislimit.WithKeyPrefix(prefix)))
	resp, err := first.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v, %v", resp, err)
	}
	resp.Body.Close()
	if errs := fleetRun(t, srv.URL, prefix, 8, 8, 7*time.Second); errs != 0 {
		t.Fatalf("%d requests failed", errs)
	}
	c, windows := api.Counts(), api.Windows()
	t.Logf("server saw %+v; admitted per window %v", c, windows)
	if c.Limited != 0 {
		t.Fatalf("%d requests were refused with 429 after the first response", c.Limited)
	}
	full := windows[1 : len(windows)-1]
	if len(full) < 2 {
		t.Fatalf("only %d full windows: %v", len(full), windows)
	}
	for i, n := range full {
		if n < api.Limit*9/10 {
			t.Fatalf("window %d used %d of %d (< 90%%): %v", i+1, n, api.Limit, windows)
		}
	}
}

// TestFleetWithDefaultLimitsNeverSees429: with a default limit below the
// server's, even the first wave, sent before any response, stays within
// it; the fleet then switches to the advertised budget.
func TestFleetWithDefaultLimitsNeverSees429(t *testing.T) {
	sharedRedis(t)
	api := &fakeapi.Server{Limit: 40, Window: 2 * time.Second}
	srv := httptest.NewServer(api)
	defer srv.Close()
	if errs := fleetRun(t, srv.URL, uniquePrefix(t), 8, 8, 5*time.Second,
		httpclient.WithDefaultLimits(srl.PerSecond(5))); errs != 0 {
		t.Fatalf("%d requests failed", errs)
	}
	c, windows := api.Counts(), api.Windows()
	t.Logf("server saw %+v; admitted per window %v", c, windows)
	if c.Limited != 0 {
		t.Fatalf("%d requests were refused with 429", c.Limited)
	}
	if full := windows[1 : len(windows)-1]; len(full) == 0 || full[0] < api.Limit*9/10 {
		t.Fatalf("the fleet did not move past the default limit to the advertised budget: %v", windows)
	}
}
