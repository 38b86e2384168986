package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/internal/fakeapi"
	"github.com/smartratelimit/smartratelimit/internal/fakellm"
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
	limit, tokens       *int
	llm                 *bool
	duration, window    *time.Duration
}

func newDemo() *demoCmd {
	c := newCommand("demo", "demo [flags]",
		"Runs a fleet of clients against a local API that allows --limit requests per --window and says so in its headers, and counts the 429s. With --llm the API is an LLM API that meters --tokens per model per window, OpenAI-style, and the fleet sends chat completions that the client prices in tokens.")
	return &demoCmd{
		command:    c,
		redisURL:   c.fs.String("redis", "", "Redis `URL` (redis://host:port/db); default: an embedded in-process Redis"),
		noLimit:    c.fs.Bool("no-limit", false, "send without the limiter, to see what happens"),
		clients:    c.fs.Int("clients", 8, "clients in the fleet, each with its own Redis connection"),
		goroutines: c.fs.Int("goroutines", 8, "concurrent callers per client"),
		duration:   c.fs.Duration("duration", 10*time.Second, "how long the fleet runs"),
		limit:      c.fs.Int("limit", 50, "requests the API allows per window (with --llm: per model, default 1000)"),
		tokens:     c.fs.Int("tokens", 20000, "with --llm: tokens the API allows per model per window"),
		llm:        c.fs.Bool("llm", false, "run against a local LLM API that meters requests and tokens per model"),
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
	tokens, llm := d.tokens, d.llm
	if *clients < 1 || *goroutines < 1 || *duration <= 0 || *limit < 1 || *window <= 0 || *tokens < 1 {
		fmt.Fprintln(stderr, "demo: --clients, --goroutines, --duration, --limit, --tokens and --window must be positive")
		return 2
	}
	if *llm && !d.set("limit") {
		*limit = 1000
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

	sc := newScenario(*llm, *limit, *tokens, *window)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "demo: listening:", err)
		return 1
	}
	server := &http.Server{Handler: sc.handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(ln) }()
	defer server.Close()
	url := "http://" + ln.Addr().String() + sc.path

	mode := "on, budget shared through " + where
	if *noLimit {
		mode = "OFF (--no-limit)"
	}
	fmt.Fprintf(stdout, "smartratelimit demo\n  API:     %s allows %s per %v (fixed window), advertised in headers\n  fleet:   %d clients × %d goroutines for %v\n  limiter: %s\n\n",
		url, sc.allows, *window, *clients, *goroutines, *duration, mode)

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
	get := func(ctx context.Context, c *http.Client, caller int) bool {
		req := sc.request(context.WithValue(ctx, startKey{}, time.Now()), url, caller)
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
	get(ctx, fleet[0], 0)
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
				for runCtx.Err() == nil && get(runCtx, c, g) {
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
	used, budget, windows := sc.used()
	fmt.Fprintf(tw, "budget used\t%d of %d %s in %d windows (%.0f%%)\n", used, budget, sc.unit, windows, 100*float64(used)/float64(max(budget, 1)))
	fmt.Fprintf(tw, "elapsed\t%v\n", elapsed.Round(time.Millisecond))
	_ = tw.Flush()
	if stats.failed.Load() > 0 {
		return 1
	}
	return 0
}

// scenario is the API a demo runs against: a plain one that counts
// requests, or an LLM API that meters tokens per model.
type scenario struct {
	handler http.Handler
	path    string
	allows  string // "50 requests", for the banner
	unit    string // what the budget is counted in
	request func(ctx context.Context, url string, caller int) *http.Request
	used    func() (used, budget, windows int)
}

// demoModels are the LLM demo's models, each with its own budget.
var demoModels = [...]string{"gpt-4.1", "gpt-4.1-mini"}

func newScenario(llm bool, limit, tokens int, window time.Duration) scenario {
	if !llm {
		api := &fakeapi.Server{Limit: limit, Window: window}
		return scenario{
			handler: api, path: "/v1/items", allows: fmt.Sprintf("%d requests", limit), unit: "requests",
			request: func(ctx context.Context, url string, _ int) *http.Request {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				return req
			},
			used: func() (int, int, int) {
				windows := api.Windows()
				n := 0
				for _, w := range windows {
					n += w
				}
				return n, limit * len(windows), len(windows)
			},
		}
	}
	api := &fakellm.Server{Style: fakellm.OpenAI, Window: window, Requests: limit, Tokens: tokens, Latency: 20 * time.Millisecond}
	var seq atomic.Int64
	return scenario{
		handler: api, path: "/v1/chat/completions",
		allows: fmt.Sprintf("%d requests and %d tokens per model (%s)", limit, tokens, strings.Join(demoModels[:], ", ")),
		unit:   "tokens",
		request: func(ctx context.Context, url string, caller int) *http.Request {
			// Prompts of varied length; OpenAI charges max(max_tokens, the
			// prompt's estimate) at arrival.
			words := 10 + int(seq.Add(1)*7919%150)
			body := fmt.Sprintf(`{"model":%q,"max_tokens":300,"messages":[{"role":"user","content":%q}]}`,
				demoModels[caller%len(demoModels)], strings.Repeat("word ", words))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			return req
		},
		used: func() (int, int, int) {
			n, windows := 0, 0
			for _, m := range demoModels {
				for _, w := range api.Counts(m).Windows {
					n += w.Tokens
					windows++
				}
			}
			return n, tokens * windows, windows
		},
	}
}
