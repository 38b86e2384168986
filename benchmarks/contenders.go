package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-chi/httprate"
	httprateredis "github.com/go-chi/httprate-redis"
	redisrate "github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidislimiter"
	"github.com/throttled/throttled/v2"
	goredisstore "github.com/throttled/throttled/v2/store/goredisstore.v9"
	ulule "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
	"golang.org/x/time/rate"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// decideFunc decides one event for key: allowed or not.
type decideFunc func(ctx context.Context, key string) (bool, error)

// contender is one limiter under test, set up for a scenario.
type contender struct {
	name string
	// local is true for in-process limiters (no Redis).
	local bool
	// build returns the decision function for a limit that admits
	// everything (open) or only one event per hour (tight), and a closer.
	build func(env *env, open bool) (decideFunc, func(), error)
}

// env is what contenders share: the Redis under test.
type env struct {
	addr   string
	prefix string
}

func (e *env) goRedis() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: e.addr})
}

// The limits: open admits every decision the machine can make; tight admits
// one per hour, so once spent every decision is a refusal.
const openRate = 1_000_000

var contenders = []contender{
	{name: "smartratelimit", build: func(e *env, open bool) (decideFunc, func(), error) {
		rdb := e.goRedis()
		l := redislimit.New(rdb, redislimit.WithKeyPrefix(e.prefix+"srl:"), redislimit.WithDecisionTimeout(5*time.Second))
		limit := srl.PerHour(1)
		if open {
			limit = srl.PerSecond(openRate).WithBurst(openRate)
		}
		return func(ctx context.Context, key string) (bool, error) {
			d, err := l.Allow(ctx, key, limit)
			return d.Allowed, err
		}, func() { _ = l.Close(); _ = rdb.Close() }, nil
	}},
	{name: "redis_rate v10", build: func(e *env, open bool) (decideFunc, func(), error) {
		rdb := e.goRedis()
		l := redisrate.NewLimiter(rdb)
		limit := redisrate.PerHour(1)
		if open {
			limit = redisrate.Limit{Rate: openRate, Burst: openRate, Period: time.Second}
		}
		return func(ctx context.Context, key string) (bool, error) {
			r, err := l.Allow(ctx, e.prefix+key, limit)
			if err != nil {
				return false, err
			}
			return r.Allowed > 0, nil
		}, func() { _ = rdb.Close() }, nil
	}},
	{name: "throttled v2", build: func(e *env, open bool) (decideFunc, func(), error) {
		rdb := e.goRedis()
		store, err := goredisstore.NewCtx(rdb, e.prefix+"throttled:")
		if err != nil {
			return nil, nil, err
		}
		quota := throttled.RateQuota{MaxRate: throttled.PerHour(1), MaxBurst: 0}
		if open {
			quota = throttled.RateQuota{MaxRate: throttled.PerSec(openRate), MaxBurst: openRate}
		}
		l, err := throttled.NewGCRARateLimiterCtx(store, quota)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, key string) (bool, error) {
			limited, _, err := l.RateLimitCtx(ctx, key, 1)
			return !limited, err
		}, func() { _ = rdb.Close() }, nil
	}},
	{name: "ulule/limiter v3", build: func(e *env, open bool) (decideFunc, func(), error) {
		rdb := e.goRedis()
		store, err := ulredis.NewStoreWithOptions(rdb, ulule.StoreOptions{Prefix: e.prefix + "ulule"})
		if err != nil {
			return nil, nil, err
		}
		r := ulule.Rate{Period: time.Hour, Limit: 1}
		if open {
			r.Limit = 1 << 40
		}
		l := ulule.New(store, r)
		return func(ctx context.Context, key string) (bool, error) {
			c, err := l.Get(ctx, key)
			return !c.Reached, err
		}, func() { _ = rdb.Close() }, nil
	}},
	{name: "rueidislimiter", build: func(e *env, open bool) (decideFunc, func(), error) {
		limit := 1
		if open {
			limit = 1 << 40
		}
		// The limiter does not close its client: keep it, so that the
		// next contender does not run beside its connections.
		var client rueidis.Client
		l, err := rueidislimiter.NewRateLimiter(rueidislimiter.RateLimiterOption{
			ClientBuilder: func(o rueidis.ClientOption) (rueidis.Client, error) {
				c, err := rueidis.NewClient(o)
				client = c
				return c, err
			},
			ClientOption: rueidis.ClientOption{InitAddress: []string{e.addr}, DisableCache: true},
			KeyPrefix:    e.prefix + "rueidis",
			Limit:        limit,
			Window:       time.Hour,
		})
		if err != nil {
			if client != nil {
				client.Close()
			}
			return nil, nil, err
		}
		return func(ctx context.Context, key string) (bool, error) {
			r, err := l.Allow(ctx, key)
			return r.Allowed, err
		}, client.Close, nil
	}},
	{name: "httprate-redis", build: func(e *env, open bool) (decideFunc, func(), error) {
		rdb := e.goRedis()
		limit := 1
		if open {
			limit = 1 << 40
		}
		counter := httprateredis.NewCounter(&httprateredis.Config{Client: rdb, PrefixKey: e.prefix + "httprate", WindowLength: time.Hour, FallbackDisabled: true})
		l := httprate.NewRateLimiter(limit, time.Hour, httprate.WithLimitCounter(counter))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		return func(ctx context.Context, key string) (bool, error) {
			return !l.OnLimit(discard{}, req.WithContext(ctx), key), nil
		}, func() { _ = rdb.Close() }, nil
	}},
	{name: "smartratelimit fallback (in memory)", local: true, build: func(e *env, open bool) (decideFunc, func(), error) {
		s := fallback.New()
		limit := srl.PerHour(1)
		if open {
			// In memory the machine decides millions a second: a burst no
			// run can spend keeps the path allowed.
			limit = srl.PerSecond(openRate).WithBurst(1 << 40)
		}
		return func(ctx context.Context, key string) (bool, error) {
			d, err := s.Allow(ctx, key, limit)
			return d.Allowed, err
		}, func() {}, nil
	}},
	{name: "x/time/rate (in memory, sync.Map per key)", local: true, build: func(e *env, open bool) (decideFunc, func(), error) {
		var limiters syncMap[*rate.Limiter]
		r, b := rate.Every(time.Hour), 1
		if open {
			r, b = rate.Limit(openRate), 1<<40
		}
		return func(_ context.Context, key string) (bool, error) {
			return limiters.get(key, func() *rate.Limiter { return rate.NewLimiter(r, b) }).Allow(), nil
		}, func() {}, nil
	}},
}

// discard is a ResponseWriter for httprate's OnLimit, which only sets
// headers.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
