package main

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	redisrate "github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/internal/fakeapi"
	"github.com/smartratelimit/smartratelimit/lua"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// transport measures what the rate-limited Transport adds to a request
// over a bare http.Client, against a loopback server whose responses carry
// rate-limit headers (so the parsing path runs too).
func transport(addr string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-RateLimit-Limit", "1000000000")
		h.Set("X-RateLimit-Remaining", "999999999")
		h.Set("X-RateLimit-Reset", "3600")
	}))
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	// The client redislimit's doc recommends, and storage builds from a
	// URL: the decision budget bounds its calls on the socket.
	bounded := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer bounded.Close()

	clients := []struct {
		name   string
		client *http.Client
	}{
		{"bare http.Client", &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}},
		{"httpclient, in memory", httpclient.Wrap(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()})},
		{"httpclient, Redis", httpclient.Wrap(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
			httpclient.WithRedis(rdb, redislimit.WithKeyPrefix("bt"+strconv.FormatInt(time.Now().UnixNano(), 36)+":")))},
		{"httpclient, Redis, client with ContextTimeoutEnabled", httpclient.Wrap(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
			httpclient.WithRedis(bounded, redislimit.WithKeyPrefix("bc"+strconv.FormatInt(time.Now().UnixNano(), 36)+":")))},
		{"httpclient, Redis, client with ContextTimeoutEnabled, WithLease(8)", httpclient.Wrap(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
			httpclient.WithRedis(bounded, redislimit.WithKeyPrefix("bl"+strconv.FormatInt(time.Now().UnixNano(), 36)+":")), httpclient.WithLease(8))},
		{"httpclient, Redis, WithInlineObserve", httpclient.Wrap(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
			httpclient.WithRedis(rdb, redislimit.WithKeyPrefix("bi"+strconv.FormatInt(time.Now().UnixNano(), 36)+":")), httpclient.WithInlineObserve())},
		{"httpclient, decided without Redis, responses stored in Redis (a diagnostic)", httpclient.Wrap(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
			httpclient.WithBackend(admitAll{redislimit.New(bounded, redislimit.WithKeyPrefix("bd"+strconv.FormatInt(time.Now().UnixNano(), 36)+":"))}))},
	}
	fmt.Println("## Transport overhead (one goroutine, sequential GETs on loopback)")
	fmt.Println()
	fmt.Println("| client | p50 | p99 | allocs/request | added p50 | added p99 |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	var baseP50, baseP99 time.Duration
	for i, c := range clients {
		get := func(ctx context.Context, _ string) (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := c.client.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		}
		r := measure(get, []string{""}, 1, 2*time.Second)
		if i == 0 {
			baseP50, baseP99 = r.p50, r.p99
		}
		note := ""
		if r.errs > 0 {
			note = fmt.Sprintf(" (%d errors: %v)", r.errs, r.firstErr)
		}
		fmt.Printf("| %s%s | %v | %v | %.0f | %v | %v |\n", c.name, note, r.p50, r.p99, r.allocsPerOp, r.p50-baseP50, r.p99-baseP99)
	}
	ping := measure(func(ctx context.Context, _ string) (bool, error) { return true, rdb.Ping(ctx).Err() }, []string{""}, 1, 2*time.Second)
	fmt.Printf("\nOne Redis round trip (PING, same client, same loop): p50 %v, p99 %v.\n\n", ping.p50, ping.p99)
	decisionBetween(srv.URL, clients[0].client, addr, baseP50, 3*time.Second)

	// The transport's decision alone: redislimit's Acquire in a loop, for
	// the request the transport makes on a host whose quota it learned.
	fmt.Println("The decision alone (redislimit `Acquire` in a loop, on a key with a learned quota):")
	fmt.Println()
	fmt.Println("| client | p50 | p99 | added to PING's p50 |")
	fmt.Println("|---|---:|---:|---:|")
	for _, c := range []struct {
		name string
		rdb  *redis.Client
	}{{"go-redis defaults", rdb}, {"ContextTimeoutEnabled", bounded}} {
		l := redislimit.New(c.rdb, redislimit.WithKeyPrefix("ba"+strconv.FormatInt(time.Now().UnixNano(), 36)+":"))
		ctx := context.Background()
		_ = l.Observe(ctx, "api.example.com", srl.Observation{Limit: 1_000_000_000, Remaining: 999_999_999, Reset: time.Hour, Succeeded: true})
		r := measure(func(ctx context.Context, _ string) (bool, error) {
			d, err := l.Acquire(ctx, srl.Request{Key: "api.example.com", N: 1, Probe: httpclient.DefaultProbeTimeout, MaxWait: 30 * time.Second})
			return d.Allowed, err
		}, []string{""}, 1, 2*time.Second)
		_ = l.Close()
		fmt.Printf("| %s | %v | %v | %v |\n", c.name, r.p50, r.p99, r.p50-ping.p50)
	}
	fmt.Println()
}

// admitAll is a backend that admits every request at once, with a roomy
// quota, and stores observations in the limiter it wraps: the transport's
// cost with Redis when the decision costs nothing.
type admitAll struct{ *redislimit.Limiter }

func (admitAll) Acquire(context.Context, srl.Request) (srl.Decision, error) {
	return srl.Decision{Allowed: true, Remaining: -1, Quota: srl.QuotaStatus{
		Known: true, Unit: srl.UnitRequests, Limit: 1_000_000_000, Remaining: 999_999_999, ResetAfter: time.Hour,
	}}, nil
}

// decisionBetween takes apart what a decision costs a request, timed as
// the transport makes it: between bare GETs of url, one goroutine, each
// step alternated with the others in slices of d so that the machine's
// drift reaches them alike. The steps add, one at a time, what a decision
// is made of: a round trip (PING); a script call with the decision's key
// and arguments that does nothing; one that reads and writes like the
// least a decision could (TIME, a four-field HMGET, a one-field HSET, of
// another key); acquire.lua itself with those arguments, through go-redis
// alone; redislimit's Acquire, which builds and decodes that call; and the
// transport's GET, which decides, sends and learns. Each row's figure is
// the p50 of GET and the step together, less bareP50 (the bare GET's p50
// in a loop of GETs alone), as in the table above.
func decisionBetween(url string, bare *http.Client, addr string, bareP50 time.Duration, d time.Duration) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	prefix := "bb" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	calls := &lastEval{}
	rdb.AddHook(calls)
	client := httpclient.Wrap(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, httpclient.WithRedis(rdb, redislimit.WithKeyPrefix(prefix)))
	defer httpclient.TransportOf(client).Close()
	get := func(c *http.Client) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	// The transport learns the server's quota; its next decision's call is
	// the one replayed below.
	for i := 0; i < 20; i++ {
		if err := get(client); err != nil {
			fmt.Printf("(decision taken apart: skipped, %v)\n\n", err)
			return
		}
	}
	calls.args.Store(nil)
	_ = get(client)
	decision := calls.args.Load()
	if decision == nil || len(*decision) < 4 {
		fmt.Println("(decision taken apart: skipped, no script call seen)")
		fmt.Println()
		return
	}
	replay := func(script, key string) []any {
		args := slices.Clone(*decision)
		if script != "" {
			sha, err := rdb.ScriptLoad(ctx, script).Result()
			if err != nil {
				return nil
			}
			args[1] = sha
		}
		if key != "" {
			args[3] = key
		}
		return args
	}
	nothing := replay("return {1, 0, 999999999, 3600000000, 0, 1000000000, 999999999, 3600000000, 0, 1, 1}", "")
	least := replay("local t = redis.call('TIME') local v = redis.call('HMGET', KEYS[1], 'bu', 'th', 'ex', 'q') "+
		"redis.call('HSET', KEYS[1], 'q', t[1]) return {1, 0, 999999999, 3600000000, 0, 1000000000, 999999999, 3600000000, 0, 1, 1}", prefix+"least")
	ours := replay("", "")
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(prefix+"acquire:"))
	defer l.Close()
	_ = l.Observe(ctx, "api.example.com", srl.Observation{Limit: 1_000_000_000, Remaining: 999_999_999, Reset: time.Hour, Succeeded: true})
	steps := []struct {
		name string
		step func() error
	}{
		{"nothing (the bare GET in this loop)", func() error { return nil }},
		{"`PING`", func() error { return rdb.Ping(ctx).Err() }},
		{"`EVALSHA` of a script that only replies, with the decision's key and arguments", func() error { return rdb.Do(ctx, nothing...).Err() }},
		{"`EVALSHA` of `TIME`, a four-field `HMGET`, a one-field `HSET`, the same arguments", func() error { return rdb.Do(ctx, least...).Err() }},
		{"`EVALSHA` of `acquire.lua`, the decision's call, through go-redis alone", func() error { return rdb.Do(ctx, ours...).Err() }},
		{"`redislimit` `Acquire` for the transport's request", func() error {
			_, err := l.Acquire(ctx, srl.Request{Key: "api.example.com", N: 1, Probe: httpclient.DefaultProbeTimeout, MaxWait: 30 * time.Second})
			return err
		}},
		{"the transport's GET instead of the bare one (decides, sends, learns)", nil},
	}
	times := make([]latency, len(steps))
	const slice = 50 * time.Millisecond
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i, s := range steps {
			for sliceEnd := time.Now().Add(slice); time.Now().Before(sliceEnd); {
				t0 := time.Now()
				var err error
				if s.step == nil {
					err = get(client)
				} else if err = get(bare); err == nil {
					err = s.step()
				}
				if err == nil {
					times[i].record(time.Since(t0))
				}
			}
		}
	}
	fmt.Println("A decision taken apart: one goroutine, a bare GET and then the step, the steps alternated")
	fmt.Println("in 50 ms slices (`ContextTimeoutEnabled` client):")
	fmt.Println()
	fmt.Println("| after each bare GET | p50 of both | p99 | added to the bare GET's p50 | added by this step |")
	fmt.Println("|---|---:|---:|---:|---:|")
	var previous time.Duration
	for i, s := range steps {
		p50 := times[i].quantile(0.50)
		step := "—"
		if i > 0 {
			step = fmt.Sprintf("%+v", p50-previous)
		}
		fmt.Printf("| %s | %v | %v | %+v | %s |\n", s.name, p50, times[i].quantile(0.99), p50-bareP50, step)
		previous = p50
	}
	fmt.Println()
}

// lastEval is a go-redis hook that keeps the arguments of the latest
// call of acquire.lua the client sent, alone or in a pipeline.
type lastEval struct{ args atomic.Pointer[[]any] }

// acquireSHA is acquire.lua's digest, the name EVALSHA calls it by.
var acquireSHA = fmt.Sprintf("%x", sha1.Sum([]byte(lua.Acquire)))

func (h *lastEval) keep(cmd redis.Cmder) {
	if args := cmd.Args(); cmd.Name() == "evalsha" && len(args) > 1 && args[1] == acquireSHA {
		args = slices.Clone(args)
		h.args.Store(&args)
	}
}

func (*lastEval) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lastEval) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.keep(cmd)
		return next(ctx, cmd)
	}
}

func (h *lastEval) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.keep(cmd)
		}
		return next(ctx, cmds)
	}
}

// memory measures Redis memory per key at 100,000 keys.
func memory(rdb *redis.Client) {
	ctx := context.Background()
	const keys = 100_000
	used := func() int64 {
		info, _ := rdb.Info(ctx, "memory").Result()
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		return 0
	}
	fill := func(decide func(ctx context.Context, key string) error) (perKey float64, sample int64, err error) {
		_ = rdb.FlushAll(ctx).Err()
		before := used()
		var wg sync.WaitGroup
		var failed atomic.Value
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := g; i < keys; i += goroutines {
					if err := decide(ctx, "mem-"+strconv.Itoa(i)+".example.com"); err != nil {
						failed.CompareAndSwap(nil, err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		if e, ok := failed.Load().(error); ok {
			return 0, 0, e
		}
		perKey = float64(used()-before) / keys
		var cursor uint64
		found, _, _ := rdb.Scan(ctx, cursor, "*mem-1.example.com*", 1000).Result()
		if len(found) == 0 {
			all, _, _ := rdb.Scan(ctx, 0, "*", 10).Result()
			found = all
		}
		if len(found) > 0 {
			sample, _ = rdb.MemoryUsage(ctx, found[0]).Result()
		}
		return perKey, sample, nil
	}
	ours := redislimit.New(rdb, redislimit.WithDecisionTimeout(5*time.Second))
	rr := redisrate.NewLimiter(rdb)
	rows := []struct {
		name   string
		decide func(ctx context.Context, key string) error
	}{
		{"smartratelimit, 1 limit", func(ctx context.Context, key string) error {
			_, err := ours.Allow(ctx, key, srl.PerMinute(60))
			return err
		}},
		{"smartratelimit, 3 limits", func(ctx context.Context, key string) error {
			_, err := ours.Allow(ctx, key, srl.PerSecond(10), srl.PerMinute(60), srl.PerHour(1000))
			return err
		}},
		{"smartratelimit, 1 limit + server quota", func(ctx context.Context, key string) error {
			if err := ours.Observe(ctx, key, srl.Observation{Limit: 5000, Remaining: 4999, Reset: time.Hour}); err != nil {
				return err
			}
			_, err := ours.Allow(ctx, key, srl.PerMinute(60))
			return err
		}},
		{"redis_rate v10, 1 limit", func(ctx context.Context, key string) error {
			_, err := rr.Allow(ctx, key, redisrate.PerMinute(60))
			return err
		}},
	}
	fmt.Printf("## Redis memory per key (%d keys, used_memory delta; MEMORY USAGE of one key)\n\n", keys)
	fmt.Println("| state | bytes/key | MEMORY USAGE |")
	fmt.Println("|---|---:|---:|")
	for _, r := range rows {
		perKey, sample, err := fill(r.decide)
		if err != nil {
			fmt.Printf("| %s | failed: %v | |\n", r.name, err)
			continue
		}
		fmt.Printf("| %s | %.0f | %d |\n", r.name, perKey, sample)
	}
	_ = rdb.FlushAll(ctx).Err()
	fmt.Println()
}

// fleet runs 8 clients × 8 goroutines, each client with its own Redis
// connection, against an API that enforces 50 requests per 2s and says so.
func fleet(addr string) {
	api := &fakeapi.Server{Limit: 50, Window: 2 * time.Second}
	srv := httptest.NewServer(api)
	defer srv.Close()
	prefix := "bf" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	newClient := func() (*http.Client, func()) {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		c := httpclient.New(httpclient.WithRedis(rdb, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(time.Second)),
			httpclient.WithMaxWait(10*time.Second))
		return c, func() { _ = rdb.Close() }
	}
	first, closeFirst := newClient()
	if resp, err := first.Get(srv.URL); err == nil {
		resp.Body.Close()
	}
	closeFirst()
	before := api.Counts()

	const clients, perClient, run = 8, 8, 10 * time.Second
	stop := time.Now().Add(run)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for c := 0; c < clients; c++ {
		client, closeIt := newClient()
		defer closeIt()
		for g := 0; g < perClient; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					ctx, cancel := context.WithDeadline(context.Background(), stop)
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
					resp, err := client.Do(req)
					cancel()
					var le *srl.LimitError
					switch {
					case err == nil:
						resp.Body.Close()
					case ctx.Err() != nil, errors.As(err, &le) && le.Deadline:
						return
					default:
						failed.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	c, windows := api.Counts(), api.Windows()
	full := windows[1 : len(windows)-1]
	used := 0
	for _, n := range full {
		used += n
	}
	fmt.Println("## Fleet (8 clients × 8 goroutines, separate Redis connections, API allows 50 per 2s)")
	fmt.Println()
	fmt.Println("| requests | 2xx | 429 after the first response | failed | budget used in full windows |")
	fmt.Println("|---:|---:|---:|---:|---:|")
	fmt.Printf("| %d | %d | %d | %d | %d of %d (%.1f%%) |\n\n", c.Requests-before.Requests, c.OK-before.OK, c.Limited-before.Limited,
		failed.Load(), used, api.Limit*len(full), 100*float64(used)/float64(max(api.Limit*len(full), 1)))

}
