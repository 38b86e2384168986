package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/didip/tollbooth/v7"
	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	"github.com/ulule/limiter/v3"
	ulule "github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ululemem "github.com/ulule/limiter/v3/drivers/store/memory"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/integration/internal/serverlog"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// The real-server suite: the fleet against rate-limit middleware other
// people wrote and run in production, judged by what each server itself
// admitted and refused, counted in its own windows. The fake API of the
// other fleet tests says what the library's authors think servers say;
// these say what servers do.

// The fleet: 4 pods (transports), each with its own go-redis client on the
// shared Redis and its own connection pool, 8 goroutines each, all
// released at once on a server none of them has spoken to.
const (
	realPods       = 4
	realGoroutines = 8
	// usedFraction of each full window's budget must be admitted.
	usedFraction = 0.9
)

// realServer is one middleware, configured as a service would be.
type realServer struct {
	name string
	// budget admissions per period is what the server allows, in the
	// windows of windowing.
	budget int
	period time.Duration
	run    time.Duration
	// build returns a fresh middleware with app behind it, and its windows
	// (some depend on when the middleware was built).
	build func(app http.Handler) (http.Handler, serverlog.Windowing)
	// opts are extra client options (default limits for a silent server).
	opts []httpclient.Option
	// lease, when positive, is every pod's WithLease: a quarter of the
	// requests the server admits must then come from leases.
	lease int
	// silent servers send no rate-limit header at all: the fleet must
	// not get a single 429.
	silent bool
	// teachesByRefusal servers say nothing until they refuse: no 429 may
	// come after the first window.
	teachesByRefusal bool
	// bucket servers have no windows of their own (a GCRA, a token bucket):
	// the periods we count in are ours, and one that follows a burst the
	// bucket allowed is lower by what the burst took ahead, so the budget
	// is judged over the span of the full periods, not in each.
	bucket bool
}

// remoteIP keys a limiter by the client's address without the port, as
// each middleware's own IP key does: the whole fleet, on 127.0.0.1, is
// one client.
func remoteIP(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return httprate.CanonicalizeIP(host), err
}

func realServers() []realServer {
	return []realServer{
		{
			// ulule/limiter v3.11.2, stdlib middleware + memory store: a
			// fixed window per key (here the client IP) that the first
			// request after the previous window's expiry opens, lasting
			// Period (the counter expires when now > expiration =
			// opening + Period). Every request counts, refused ones too.
			// Sends X-RateLimit-Limit, -Remaining and -Reset (the
			// expiration in epoch seconds, truncated) on every response,
			// 429 "Limit exceeded" without Retry-After.
			//
			// A window that opens with its first request, told in whole
			// seconds, is known to the fleet only to about a second: the
			// next window opens up to a second after the last one ended,
			// and that time is budget lost. Real servers of this kind
			// count per minute or hour; 15 s keeps the loss near 5%.
			name: "ulule fixed window", budget: 75, period: 15 * time.Second, run: 64 * time.Second,
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				rate := limiter.Rate{Period: 15 * time.Second, Limit: 75}
				mw := ulule.NewMiddleware(limiter.New(ululemem.NewStore(), rate))
				return mw.Handler(app), serverlog.Expiring(rate.Period)
			},
		},
		{
			// ulule/limiter as above, with a roomy budget, and pods that
			// take leases (WithLease(8)): while more than an eighth of a
			// window is left they admit most requests from memory, and
			// the leases must neither spend past the window nor leave
			// its budget unused.
			name: "ulule fixed window, leased", budget: 1500, period: 15 * time.Second, run: 50 * time.Second, lease: 8,
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				rate := limiter.Rate{Period: 15 * time.Second, Limit: 1500}
				mw := ulule.NewMiddleware(limiter.New(ululemem.NewStore(), rate))
				return mw.Handler(app), serverlog.Expiring(rate.Period)
			},
		},
		{
			// go-chi/httprate v0.16.1, local counter: a sliding-window
			// counter over fixed windows of WindowLength aligned to the
			// limiter's creation instant (currentWindow(t) = (t−offset)
			// truncated to the window, + offset, offset = creation mod
			// window); it admits while round(prev×(1−elapsed/window) +
			// curr) + 1 ≤ limit, so a fixed window admits at most the
			// limit. Refused requests are not counted. Sends
			// X-RateLimit-Limit, -Remaining and -Reset (the current
			// window's end in epoch seconds, truncated: the offset is
			// lost), and Retry-After = the whole window in seconds on 429.
			//
			// Its windows are told in whole seconds: the fleet knows its
			// boundaries to about a second, and a sliding window punishes
			// what lands on the wrong side of one. Real servers count
			// per minute or hour; 10 s keeps that second a tenth.
			name: "httprate sliding window", budget: 50, period: 10 * time.Second, run: 45 * time.Second,
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				return httprateServer(app, 50, 10*time.Second)
			},
		},
		{
			// throttled/throttled v2.15.0, HTTPRateLimiterCtx with a GCRA
			// on a memstore: one request every Period/n, MaxBurst+1 back
			// to back. PerDuration(20, 2s) with MaxBurst 19 is a bucket
			// of 20 refilled at 10/s: 20 per 2 s in the steady state, no
			// windows of its own (ours are consecutive 2 s periods from
			// the first admitted request). Sends X-RateLimit-Limit
			// (MaxBurst+1), -Remaining, -Reset (ceil seconds until the
			// bucket is full again) and on a refusal Retry-After (ceil
			// seconds until one request fits).
			name: "throttled GCRA", budget: 20, period: 2 * time.Second, run: 9 * time.Second, bucket: true,
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				store, err := memstore.NewCtx(1 << 16)
				if err != nil {
					panic(err)
				}
				quota := throttled.RateQuota{MaxRate: throttled.PerDuration(20, 2*time.Second), MaxBurst: 19}
				gcra, err := throttled.NewGCRARateLimiterCtx(store, quota)
				if err != nil {
					panic(err)
				}
				h := &throttled.HTTPRateLimiterCtx{RateLimiter: gcra, VaryBy: &throttled.VaryBy{RemoteAddr: true}}
				return h.RateLimit(app), serverlog.FromFirstAdmitted(2 * time.Second)
			},
		},
		{
			// didip/tollbooth v7.0.2: a golang.org/x/time/rate token
			// bucket per IP and path, NewLimiter(10) = 10 tokens/s, burst
			// 10; no windows of its own (ours are consecutive seconds from
			// the first admitted request). Sends X-Rate-Limit-Limit:
			// 10.00, X-Rate-Limit-Duration: 1, the remote address, and the
			// draft RateLimit-Limit, RateLimit-Remaining (whole tokens
			// left) and RateLimit-Reset: 1 (always); 429 without
			// Retry-After.
			name: "tollbooth token bucket", budget: 10, period: time.Second, run: 7 * time.Second, bucket: true,
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				return tollbooth.LimitHandler(tollbooth.NewLimiter(10, nil), app), serverlog.FromFirstAdmitted(time.Second)
			},
		},
		{
			// sethvargo/go-limiter v0.7.1, httplimit + memorystore: a
			// bucket per IP created by the first request, refilled to
			// Tokens at every tick Interval after its creation (a fixed
			// window from the first request, later windows on that grid
			// whether or not a request comes). Refused requests do not
			// count. Sends X-RateLimit-Limit, -Remaining, -Reset as an
			// RFC 1123 date in UTC (the tick's end, truncated to the
			// second), and Retry-After as the same date on 429.
			name: "go-limiter RFC1123 dates", budget: 20, period: 2 * time.Second, run: 9 * time.Second,
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				store, err := memorystore.New(&memorystore.Config{Tokens: 20, Interval: 2 * time.Second})
				if err != nil {
					panic(err)
				}
				mw, err := httplimit.NewMiddleware(store, httplimit.IPKeyFunc())
				if err != nil {
					panic(err)
				}
				return mw.Handle(app), serverlog.FromFirstRequest(2 * time.Second)
			},
		},
		{
			// go-chi/httprate v0.16.1 as above (20 per 1 s window, windows
			// aligned to its creation), with every header but Retry-After
			// turned off: nothing on a 200, "Retry-After: 1" (the whole
			// window) on a 429. The first 429 is all the fleet can learn
			// from, so it is judged by the 429s after the first window.
			name: "httprate Retry-After only", budget: 20, period: time.Second, run: 7 * time.Second, teachesByRefusal: true,
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				return httprateServer(app, 20, time.Second,
					httprate.WithResponseHeaders(httprate.ResponseHeaders{RetryAfter: "Retry-After"}))
			},
		},
		{
			// go-chi/httprate v0.16.1 as above (20 per 1 s window, windows
			// aligned to its creation) with every header turned off: a
			// bare 429 "Too Many Requests", nothing on a 200. (The echo
			// v4.16.5 RateLimiter would be the other choice, but it needs
			// go 1.26 and this module's go directive stays 1.25.) The
			// fleet runs with a default limit of 19/s, just under it.
			name: "httprate no headers", budget: 20, period: time.Second, run: 7 * time.Second, silent: true,
			opts: []httpclient.Option{httpclient.WithDefaultLimits(srl.PerSecond(19))},
			build: func(app http.Handler) (http.Handler, serverlog.Windowing) {
				return httprateServer(app, 20, time.Second, httprate.WithResponseHeaders(httprate.ResponseHeaders{}))
			},
		},
	}
}

// httprateServer builds an httprate limiter and the windows of its local
// counter, whose offset is the creation instant modulo the window: taken
// just before the constructor, within microseconds of the one it takes.
func httprateServer(app http.Handler, limit int, window time.Duration, opts ...httprate.Option) (http.Handler, serverlog.Windowing) {
	created := time.Now().UTC()
	rl := httprate.NewRateLimiter(limit, window, append([]httprate.Option{httprate.WithKeyFuncs(remoteIP)}, opts...)...)
	return rl.Handler(app), serverlog.Aligned(window, created.Sub(created.Truncate(window)))
}

// fleetOutcome is what the clients saw.
type fleetOutcome struct {
	// start is the fleet's release, stop the run's deadline, ended when
	// its last goroutine gave up or finished.
	start, stop, ended time.Time
	responses          map[int]int
	// failFast counts *LimitErrors with Deadline near the run's end;
	// maxLeft is the most run time one of them left unused, maxTook the
	// longest one of those calls took.
	failFast         int
	maxLeft, maxTook time.Duration
	// cut counts requests already admitted (or sent) when the run's
	// deadline cancelled them: the run ending, not the library.
	cut int
	// errs are the other errors: every one is a failure.
	errs []string
	// sent is when each request (by serverlog.IDHeader) was written;
	// firstReceived is when the first response reached any pod.
	sent          map[string]time.Time
	firstReceived time.Time
	// first429 is when the first 429 reached any pod.
	first429 time.Time
}

// afterRefusal counts the 429s to requests written after the first 429
// reached a pod.
func (o *fleetOutcome) afterRefusal(recs []serverlog.Record) int {
	n := 0
	for _, r := range recs {
		if at, ok := o.sent[r.ID]; ok && r.Status == http.StatusTooManyRequests && !o.first429.IsZero() && at.After(o.first429) {
			n++
		}
	}
	return n
}

// blind counts the 429s to requests written before any pod had received
// a response: the ones no client could have known to hold back, except by
// sending a single probe first.
func (o *fleetOutcome) blind(recs []serverlog.Record) int {
	n := 0
	for _, r := range recs {
		if at, ok := o.sent[r.ID]; ok && r.Status == http.StatusTooManyRequests && at.Before(o.firstReceived) {
			n++
		}
	}
	return n
}

// runRealFleet releases realPods × realGoroutines on url at once, for d.
// Each request's context ends with the run. A fail-fast deadline error is
// legitimate when it comes within nearEnd of the run's end and refuses a
// wait the server could impose (at most nearEnd); any other error, and a
// request held until the run's deadline without being sent, is not.
func runRealFleet(t *testing.T, url, prefix string, d, nearEnd, maxWait time.Duration, opts ...httpclient.Option) *fleetOutcome {
	t.Helper()
	addr := sharedRedis(t)
	out := &fleetOutcome{responses: map[int]int{}, sent: map[string]time.Time{}}
	var mu sync.Mutex
	var ids atomic.Int64
	failed := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		out.errs = append(out.errs, fmt.Sprintf(format, args...))
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for p := 0; p < realPods; p++ {
		// A pod: its own Redis connection and its own connection pool
		// (pods do not share sockets), keep-alive for every goroutine.
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.MaxIdleConnsPerHost = realGoroutines
		t.Cleanup(base.CloseIdleConnections)
		// Half the pods use the client storage builds from a URL, whose
		// lone decisions go out from their callers' goroutines; the others
		// go-redis's defaults, whose decisions all go through the workers.
		rdbOpts := &redis.Options{ContextTimeoutEnabled: p%2 == 1}
		client := httpclient.Wrap(&http.Client{Transport: base}, append([]httpclient.Option{
			httpclient.WithRedis(newClient(t, addr, rdbOpts), redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(2*time.Second)),
			httpclient.WithMaxWait(maxWait),
		}, opts...)...)
		if c, ok := client.Transport.(io.Closer); ok {
			t.Cleanup(func() { _ = c.Close() })
		}
		for g := 0; g < realGoroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				stop := out.stop
				for others := 0; time.Now().Before(stop); {
					id := strconv.FormatInt(ids.Add(1), 10)
					var admitted atomic.Bool
					trace := &httptrace.ClientTrace{
						// The limiter hands the request to the transport,
						// which asks for a connection: it was admitted.
						GetConn: func(string) { admitted.Store(true) },
						WroteHeaders: func() {
							mu.Lock()
							out.sent[id] = time.Now()
							mu.Unlock()
						},
						GotFirstResponseByte: func() {
							now := time.Now()
							mu.Lock()
							if out.firstReceived.IsZero() || now.Before(out.firstReceived) {
								out.firstReceived = now
							}
							mu.Unlock()
						},
					}
					ctx, cancel := context.WithDeadline(httptrace.WithClientTrace(context.Background(), trace), stop)
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					req.Header.Set(serverlog.IDHeader, id)
					called := time.Now()
					resp, err := client.Do(req)
					now := time.Now()
					ctxErr := ctx.Err()
					cancel()
					mu.Lock()
					_, wasSent := out.sent[id]
					mu.Unlock()
					var le *srl.LimitError
					switch {
					case err == nil:
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mu.Lock()
						out.responses[resp.StatusCode]++
						if resp.StatusCode == http.StatusTooManyRequests && (out.first429.IsZero() || now.Before(out.first429)) {
							out.first429 = now
						}
						mu.Unlock()
						continue
					case errors.As(err, &le) && le.Deadline:
						left := stop.Sub(now)
						if left < 0 || left > nearEnd || le.RetryAfter > nearEnd {
							failed("%v with %v of the run left (fail-fast is expected within %v of its end, for a wait of at most that)",
								err, left.Round(time.Millisecond), nearEnd)
							return
						}
						mu.Lock()
						out.failFast++
						out.maxLeft = max(out.maxLeft, left)
						out.maxTook = max(out.maxTook, now.Sub(called))
						mu.Unlock()
						return // the next slot is after the run
					case ctxErr != nil && (wasSent || admitted.Load()):
						// Admitted (or sent) just before the run's deadline
						// cut it: the run ended, not the library.
						mu.Lock()
						out.cut++
						mu.Unlock()
						return
					case ctxErr != nil:
						failed("held until the run's deadline and never sent, instead of failing fast: %v", err)
						return
					default:
						failed("%v", err)
						if others++; others == 20 {
							return // one goroutine's errors are enough
						}
					}
				}
			}()
		}
	}
	out.start = time.Now()
	out.stop = out.start.Add(d)
	close(release)
	wg.Wait()
	out.ended = time.Now()
	return out
}

// realResult is one line of the closing table.
type realResult struct {
	name string
	s    serverlog.Summary
}

// TestRealServerFleet runs the fleet, cold, against each real middleware
// in turn and judges it by the server's own counts: no 429 after the first
// response (none at all on a silent server), at least 90% of the budget
// admitted in every full window and over the time the full windows span,
// and no client error but a fail-fast deadline error at the end of the run.
func TestRealServerFleet(t *testing.T) {
	sharedRedis(t)
	var results []realResult
	var mu sync.Mutex
	// The servers run side by side: each has its own key, its own pods and
	// a few requests a second, so they do not disturb each other, and the
	// suite takes as long as its longest run.
	t.Run("servers", func(t *testing.T) {
		for _, srv := range realServers() {
			t.Run(strings.ReplaceAll(srv.name, " ", "_"), func(t *testing.T) {
				t.Parallel()
				s := runRealServer(t, srv)
				mu.Lock()
				results = append(results, realResult{srv.name, s})
				mu.Unlock()
			})
		}
	})
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\trequests\t200s\t429s\t429s after first response\tbudget used in full windows\tover the span\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f%% (%d/%d)\t%.1f%% (%d/%.1f)\t\n", r.name, r.s.Requests, r.s.OK, r.s.Limited,
			r.s.LimitedAfterFirst, r.s.FullPercent(), r.s.FullUsed, r.s.FullBudget, r.s.SpanPercent(), r.s.SpanUsed, r.s.SpanBudget)
	}
	tw.Flush()
	t.Logf("real servers, %d pods × %d goroutines, cold start:\n%s", realPods, realGoroutines, b.String())
}

func runRealServer(t *testing.T, srv realServer) serverlog.Summary {
	var log serverlog.Log
	h, windowing := srv.build(serverlog.App)
	ts := httptest.NewServer(log.Wrap(h))
	// A fail-fast deadline error is legitimate when the request's slot,
	// behind at most the whole fleet queued at the server's pace and one
	// window (whose end the server tells in whole seconds), is after the
	// end of the run.
	fleet := time.Duration(realPods * realGoroutines)
	nearEnd := srv.period + fleet*srv.period/time.Duration(srv.budget) + time.Second + 100*time.Millisecond
	// A request may wait as long as the run: 32 callers share a budget of a
	// few a second, and which of them the next free unit goes to is not
	// fair, so one may wait many windows; the run's deadline bounds it.
	opts := srv.opts
	var leased atomic.Int64
	if srv.lease > 0 {
		opts = append(opts[:len(opts):len(opts)], httpclient.WithLease(srv.lease), httpclient.WithObserver(srl.ObserverFunc(func(e srl.Event) {
			if e.Leased {
				leased.Add(1)
			}
		})))
	}
	out := runRealFleet(t, ts.URL, uniquePrefix(t), srv.run, nearEnd, srv.run, opts...)
	ts.Close() // waits for every request in flight
	recs := log.Records()
	s := serverlog.Summarize(recs, windowing, out.start, out.stop, srv.budget, srv.period)

	for _, status := range []int{http.StatusOK, http.StatusTooManyRequests} {
		if sample, ok := log.Sample(status); ok {
			t.Logf("sample %s", sample)
		}
	}
	t.Logf("server: %d requests, %d × 200 (%d reached the app), %d × 429, %d other; first response at %+.3fs, %d × 429 after it (%d of them to requests written before any pod had a response)",
		s.Requests, s.OK, s.Admitted, s.Limited, s.Other, s.FirstResponse.Sub(out.start).Seconds(), s.LimitedAfterFirst, out.blind(recs))
	t.Logf("windows (budget %d per %v, * = full, times from the fleet's release, run ends at %+.2fs): %s",
		srv.budget, srv.period, out.stop.Sub(out.start).Seconds(), s.Describe(out.start))
	t.Logf("budget used: %.1f%% in the full windows (%d of %d), %.1f%% over their span [%+.2fs %+.2fs] (%d of %.1f)",
		s.FullPercent(), s.FullUsed, s.FullBudget, s.SpanPercent(), s.SpanStart.Sub(out.start).Seconds(),
		s.SpanEnd.Sub(out.start).Seconds(), s.SpanUsed, s.SpanBudget)
	t.Logf("clients: responses %v; %d fail-fast deadline errors (at most %v before the end, %v allowed; the slowest took %v), %d cut in flight by the end, %d other errors; the last goroutine ended at %+.2fs",
		out.responses, out.failFast, out.maxLeft.Round(time.Millisecond), nearEnd, out.maxTook.Round(time.Millisecond),
		out.cut, len(out.errs), out.ended.Sub(out.start).Seconds())

	if srv.lease > 0 {
		t.Logf("leases: %d requests admitted from them", leased.Load())
		if leased.Load()*4 < int64(s.OK) {
			t.Errorf("leases admitted %d requests of the %d the server admitted, under a quarter", leased.Load(), s.OK)
		}
	}

	// Sanity of the judge itself.
	if s.Admitted != s.OK || s.Other != 0 {
		t.Errorf("judge: %d requests reached the app but %d got 200, %d got neither 200 nor 429", s.Admitted, s.OK, s.Other)
	}
	if len(s.Full) < 2 {
		t.Errorf("judge: only %d full windows in the run; lengthen it", len(s.Full))
	}

	// The verdicts.
	switch {
	case srv.silent:
		if s.Limited != 0 {
			t.Errorf("%d × 429 from a server that sends no rate-limit header, under a default limit below its own", s.Limited)
		}
	case srv.teachesByRefusal:
		// The first window is where it teaches: the burst that drew its
		// first 429s was admitted before anyone knew, and refusals still in
		// flight then arrive after it. Not one may come after that window.
		late := 0
		for _, i := range s.Full {
			late += s.Windows[i].Limited
		}
		if late != 0 {
			t.Errorf("%d × 429 in the windows after the first (the first refusal teaches; %d written after a pod had one)", late, out.afterRefusal(recs))
		}
	case s.LimitedAfterFirst != 0:
		t.Errorf("%d × 429 to requests that arrived after the server's first response", s.LimitedAfterFirst)
	}
	if under := s.Under(usedFraction); len(under) > 0 && !srv.bucket {
		var ws []string
		for _, i := range under {
			ws = append(ws, fmt.Sprintf("w%d %d/%d", i, s.Windows[i].Admitted, srv.budget))
		}
		t.Errorf("%d of %d full windows used under %.0f%% of the budget: %s", len(under), len(s.Full), 100*usedFraction, strings.Join(ws, ", "))
	}
	if len(s.Full) > 0 && s.SpanPercent() < 100*usedFraction {
		t.Errorf("over the span of the full windows %.1f%% of the budget was used (%d of %.1f), under %.0f%%",
			s.SpanPercent(), s.SpanUsed, s.SpanBudget, 100*usedFraction)
	}
	if len(out.errs) > 0 {
		t.Errorf("%d client errors other than a fail-fast deadline at the end of the run; first: %s", len(out.errs), out.errs[0])
		for i, e := range out.errs[1:min(len(out.errs), 5)] {
			t.Logf("client error %d: %s", i+2, e)
		}
	}
	if t.Failed() {
		t.Logf("what the server told around the faults (arrival from the fleet's release, status, headers):\n%s",
			aroundFaults(recs, s, out.start))
	}
	return s
}

// aroundFaults lists the responses from a second and a half before to
// two seconds after each fault: the start of a window used under budget,
// a refusal after the first response. It lists at most 100.
func aroundFaults(recs []serverlog.Record, s serverlog.Summary, origin time.Time) string {
	var faults []time.Time
	for _, i := range s.Under(usedFraction) {
		faults = append(faults, s.Windows[i].Start)
	}
	for _, r := range recs {
		if r.Status == http.StatusTooManyRequests && r.Arrived.After(s.FirstResponse) {
			faults = append(faults, r.Arrived)
		}
	}
	var b strings.Builder
	listed := 0
	for _, r := range recs {
		near := false
		for _, f := range faults {
			near = near || r.Arrived.After(f.Add(-1500*time.Millisecond)) && r.Arrived.Before(f.Add(2*time.Second))
		}
		if !near {
			continue
		}
		if listed++; listed > 100 {
			b.WriteString("…\n")
			break
		}
		fmt.Fprintf(&b, "%+.3fs %d %s\n", r.Arrived.Sub(origin).Seconds(), r.Status, r.Told)
	}
	return b.String()
}
