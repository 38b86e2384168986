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

// TestFleetSharesTheBudget: a fleet of 8 clients × 8 goroutines, each
// client with its own Redis connection, starts cold on an API that says
// its budget in its headers: one probe goes first, its response teaches
// the whole fleet, and then not a single request is refused, first window
// included, while at least 95% of every window's budget is used.
func TestFleetSharesTheBudget(t *testing.T) {
	sharedRedis(t)
	api := &fakeapi.Server{Limit: 40, Window: 2 * time.Second}
	srv := httptest.NewServer(api)
	defer srv.Close()
	if errs := fleetRun(t, srv.URL, uniquePrefix(t), 8, 8, 7*time.Second); errs != 0 {
		t.Fatalf("%d requests failed", errs)
	}
	c, windows := api.Counts(), api.Windows()
	t.Logf("server saw %+v; admitted per window %v", c, windows)
	if c.Limited != 0 {
		t.Fatalf("%d requests were refused with 429, cold start included", c.Limited)
	}
	used := 0
	for _, n := range windows[:len(windows)-1] {
		used += n
	}
	if full := len(windows) - 1; full < 2 || used*100 < 95*api.Limit*full {
		t.Fatalf("%d of %d in the %d windows before the last (< 95%%): %v", used, api.Limit*full, full, windows)
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
