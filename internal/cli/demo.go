package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/internal/fakeapi"
	"github.com/smartratelimit/smartratelimit/internal/redact"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// demoStats is what the fleet saw.
type demoStats struct {
	sent, ok, limited, failed atomic.Int64
	gaveUp                    atomic.Int64 // callers whose wait would outlast the run
	waited                    atomic.Int64 // requests that waited for their budget
	waitNanos                 atomic.Int64
}

// sendTimer measures how long each request waited between the caller's
// Do and the moment the rate-limited transport let it through.
type sendTimer struct {
	base  http.RoundTripper
	stats *demoStats
}

type startKey struct{}

func (s sendTimer) RoundTrip(req *http.Request) (*http.Response, error) {
	if start, ok := req.Context().Value(startKey{}).(time.Time); ok {
		if w := time.Since(start); w > 2*time.Millisecond {
			s.stats.waited.Add(1)
			s.stats.waitNanos.Add(int64(w))
		}
	}
	s.stats.sent.Add(1)
	return s.base.RoundTrip(req)
}

// demoCmd runs a simulated fleet against a local rate-limited API.
type demoCmd struct {
	*command
	redisURL            *string
	noLimit, quiet      *bool
	clients, goroutines *int
	limit               *int
	duration, window    *time.Duration
}

func newDemo() *demoCmd {
	c := newCommand("demo", "demo [flags]",
		"Runs a fleet of clients against a local API that allows --limit requests per --window and says so in its headers, and counts the 429s.")
	return &demoCmd{
		command:    c,
		redisURL:   c.fs.String("redis", "", "Redis `URL` (redis://host:port/db); default: an embedded in-process Redis"),
		noLimit:    c.fs.Bool("no-limit", false, "send without the limiter, to see what happens"),
		clients:    c.fs.Int("clients", 8, "clients in the fleet, each with its own Redis connection"),
		goroutines: c.fs.Int("goroutines", 8, "concurrent callers per client"),
		duration:   c.fs.Duration("duration", 10*time.Second, "how long the fleet runs"),
		limit:      c.fs.Int("limit", 50, "requests the API allows per window"),
		window:     c.fs.Duration("window", 2*time.Second, "the API's fixed window"),
		quiet:      c.fs.Bool("quiet", false, "no live progress"),
	}
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d := newDemo()
	rest, code, exit := d.parse(args, stdout, stderr)
	if exit {
		return code
	}
	if len(rest) > 0 {
		return d.badUsage(stderr, fmt.Sprintf("unexpected argument %q", rest[0]))
	}
	redisURL, noLimit, clients, goroutines, duration, limit, window, quiet :=
		d.redisURL, d.noLimit, d.clients, d.goroutines, d.duration, d.limit, d.window, d.quiet
	if *clients < 1 || *goroutines < 1 || *duration <= 0 || *limit < 1 || *window <= 0 {
		fmt.Fprintln(stderr, "demo: --clients, --goroutines, --duration, --limit and --window must be positive")
		return 2
	}

	var opts *redis.Options
	where := ""
	if !*noLimit {
		if *redisURL == "" {
			mr, err := miniredis.Run()
			if err != nil {
				fmt.Fprintln(stderr, "demo: starting the embedded Redis:", err)
				return 1
			}
			defer mr.Close()
			opts = &redis.Options{Addr: mr.Addr()}
			where = "embedded Redis (miniredis) at " + mr.Addr()
		} else {
			o, err := redis.ParseURL(*redisURL)
			if err != nil {
				// ParseURL's errors quote the whole URL, password included.
				fmt.Fprintf(stderr, "demo: bad --redis URL %q: %v\n", redact.URL(*redisURL), redact.Error(urlReason(err)))
				return 2
			}
			opts = o
			where = "Redis at " + o.Addr
			probe := redis.NewClient(o)
			err = probe.Ping(ctx).Err()
			_ = probe.Close()
			if err != nil {
				fmt.Fprintf(stderr, "demo: Redis at %s is unreachable: %v\n", o.Addr, redact.Error(err))
				return 1
			}
		}
	}

	api := &fakeapi.Server{Limit: *limit, Window: *window}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "demo: listening:", err)
		return 1
	}
	server := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(ln) }()
	defer server.Close()
	url := "http://" + ln.Addr().String() + "/v1/items"

	mode := "on, budget shared through " + where
	if *noLimit {
		mode = "OFF (--no-limit)"
	}
	fmt.Fprintf(stdout, "smartratelimit demo\n  API:     %s allows %d requests per %v (fixed window), advertised in headers\n  fleet:   %d clients × %d goroutines for %v\n  limiter: %s\n\n",
		url, *limit, *window, *clients, *goroutines, *duration, mode)

	stats := &demoStats{}
	prefix := fmt.Sprintf("demo:%d:", time.Now().UnixNano())
	newClient := func() (*http.Client, func()) {
		base := sendTimer{base: http.DefaultTransport, stats: stats}
		if *noLimit {
			return &http.Client{Transport: base}, func() {}
		}
		rdb := redis.NewClient(opts)
		tr := httpclient.NewTransport(base,
			httpclient.WithRedis(rdb, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(time.Second)),
			httpclient.WithMaxWait(*window+5*time.Second))
		return &http.Client{Transport: tr}, func() { _ = tr.Close(); _ = rdb.Close() }
	}
	fleet := make([]*http.Client, *clients)
	for i := range fleet {
		c, closeClient := newClient()
		defer closeClient()
		fleet[i] = c
	}

	// get sends one request; false means the caller should stop: the run
	// is over, or the budget cannot come back before it ends.
	get := func(ctx context.Context, c *http.Client) bool {
		req, _ := http.NewRequestWithContext(context.WithValue(ctx, startKey{}, time.Now()), http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			var le *srl.LimitError
			switch {
			case ctx.Err() != nil:
			case errors.As(err, &le) && le.Deadline:
				stats.gaveUp.Add(1)
			default:
				stats.failed.Add(1)
				fmt.Fprintln(stderr, "demo:", redact.Error(err))
			}
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			stats.limited.Add(1)
		case resp.StatusCode < 300:
			stats.ok.Add(1)
		}
		return true
	}

	// The first response, seen by one pod: the fleet learns from it.
	get(ctx, fleet[0])
	firstLimited := stats.limited.Load()

	runCtx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range fleet {
		for g := 0; g < *goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil && get(runCtx, c) {
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			if !*quiet {
				fmt.Fprintf(stdout, "  %5.1fs  sent %5d   2xx %5d   429 %5d\n", time.Since(start).Seconds(), stats.sent.Load(), stats.ok.Load(), stats.limited.Load())
			}
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		fmt.Fprintln(stderr, "demo: interrupted")
		return 1
	}

	elapsed := time.Since(start)
	windows := api.Windows()
	budget := *limit * len(windows)
	ok := stats.ok.Load()
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "result\t%s\n", map[bool]string{true: "without the limiter", false: "with the limiter"}[*noLimit])
	fmt.Fprintf(tw, "requests sent\t%d\n", stats.sent.Load())
	fmt.Fprintf(tw, "2xx\t%d\n", ok)
	fmt.Fprintf(tw, "429\t%d (%d after the first response)\n", stats.limited.Load(), stats.limited.Load()-firstLimited)
	fmt.Fprintf(tw, "failed\t%d\n", stats.failed.Load())
	fmt.Fprintf(tw, "callers stopped early\t%d (their next slot was after the end of the run)\n", stats.gaveUp.Load())
	mean := time.Duration(0)
	if n := stats.waited.Load(); n > 0 {
		mean = time.Duration(stats.waitNanos.Load() / n)
	}
	fmt.Fprintf(tw, "requests that waited\t%d (mean wait %v)\n", stats.waited.Load(), mean.Round(time.Millisecond))
	fmt.Fprintf(tw, "budget used\t%d of %d in %d windows (%.0f%%)\n", ok, budget, len(windows), 100*float64(ok)/float64(max(budget, 1)))
	fmt.Fprintf(tw, "elapsed\t%v\n", elapsed.Round(time.Millisecond))
	_ = tw.Flush()
	if stats.failed.Load() > 0 {
		return 1
	}
	return 0
}
