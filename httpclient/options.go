package httpclient

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient/internal/dialect"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// Option configures a Transport (and the clients New and Wrap return).
type Option func(*config)

// HeaderMap names custom rate-limit headers (the source documents'
// headers_map). Reset values are read like X-RateLimit-Reset: epoch
// seconds or milliseconds, seconds from now, a duration such as "6m0s",
// or a date. Empty names are ignored.
type HeaderMap struct {
	Limit, Remaining, Reset, RetryAfter string
}

// hostLimits are the limits of one host, or of every host.
type hostLimits struct {
	fixed, defaults []srl.Limit
	fixedSet        bool
	defaultsSet     bool
}

type config struct {
	rdb          redis.UniversalClient
	limiterOpts  []redislimit.Option
	backend      srl.Backend
	storageURL   string
	all          hostLimits
	hosts        map[string]*hostLimits
	maxWait      time.Duration
	raiseOnLimit bool
	reserve      float64
	keyFunc      KeyFunc
	retry        RetryPolicy
	headerMap    *dialect.Mapping
	bodyPrefix   int
	observer     srl.Observer
	probe        time.Duration
	cost         CostFunc
	// inlineObserve stores every observation before RoundTrip returns.
	inlineObserve bool
	lease         int
	err           error
}

// Defaults of the options below.
const (
	DefaultMaxWait = 30 * time.Second
	// DefaultProbeTimeout is the default probe lease (WithProbe).
	DefaultProbeTimeout = 2 * time.Second
)

func defaultConfig() config {
	return config{
		maxWait:    DefaultMaxWait,
		keyFunc:    HostKey,
		bodyPrefix: 4 << 10,
		probe:      DefaultProbeTimeout,
		cost:       EstimateLLM,
	}
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("httpclient: "+format, args...)
	}
}

func (c *config) host(h string) *hostLimits {
	h = CanonicalHost("", h)
	if c.hosts == nil {
		c.hosts = make(map[string]*hostLimits)
	}
	hl := c.hosts[h]
	if hl == nil {
		hl = &hostLimits{}
		c.hosts[h] = hl
	}
	return hl
}

func validLimits(c *config, what string, limits []srl.Limit) bool {
	if len(limits) > srl.MaxLimits {
		c.fail("%s: %d limits, at most %d", what, len(limits), srl.MaxLimits)
		return false
	}
	for _, l := range limits {
		if err := l.Validate(); err != nil {
			c.fail("%s: %v", what, err)
			return false
		}
	}
	return true
}

// WithRedis shares every budget through Redis, so that all processes using
// the same Redis spend from the same budgets and learn from each other's
// responses. opts configure the redislimit.Limiter built on rdb (failure
// policy, replicas, decision timeout…). Default: an in-memory store
// (fallback.New), private to this Transport.
func WithRedis(rdb redis.UniversalClient, opts ...redislimit.Option) Option {
	return func(c *config) {
		if rdb == nil {
			c.fail("nil redis client")
			return
		}
		c.rdb, c.limiterOpts = rdb, opts
	}
}

// WithStorage keeps every budget in the store rawURL names, in any form
// package storage accepts: "memory://", "redis://host:6379/0",
// "rediss://…", a Cluster or Sentinel URL, or "sqlite:///rate_limits.db"
// (a file shared by the processes of one machine; it needs
// import _ "github.com/smartratelimit/smartratelimit/sqlitelimit"). The
// Transport opens the store and closes it on Close. A URL that does not
// parse or cannot be opened makes every request fail with its error
// (its secrets masked). It overrides WithRedis; WithBackend overrides it.
func WithStorage(rawURL string) Option {
	return func(c *config) {
		if rawURL == "" {
			c.fail("empty storage URL")
			return
		}
		c.storageURL = rawURL
	}
}

// WithBackend uses b (a *redislimit.Limiter or *fallback.Store you built
// and own) to decide admission. It overrides WithRedis; the Transport does
// not close it.
func WithBackend(b srl.Backend) Option {
	return func(c *config) {
		if b == nil {
			c.fail("nil backend")
			return
		}
		c.backend = b
	}
}

// WithLimits sets limits every host is always held to, whatever the
// server says (a cap you impose on yourself). Default none.
func WithLimits(limits ...srl.Limit) Option {
	return func(c *config) {
		if validLimits(c, "WithLimits", limits) {
			c.all.fixed, c.all.fixedSet = limits, true
		}
	}
}

// WithDefaultLimits sets the limits used for a host while its server has
// not advertised its quota in response headers (the source documents'
// default_limits); several windows at once are fine, e.g.
// srl.Window(10, time.Second), srl.Window(60, time.Minute),
// srl.Window(1000, time.Hour): each binds only once its own budget is
// spent (pacing limits such as PerSecond(10), PerHour(1000) together let
// the slowest space every request). Once a response tells the real quota
// they no longer apply. Default none: a host without headers is not limited.
func WithDefaultLimits(limits ...srl.Limit) Option {
	return func(c *config) {
		if validLimits(c, "WithDefaultLimits", limits) {
			c.all.defaults, c.all.defaultsSet = limits, true
		}
	}
}

// WithHostLimits sets the fixed limits of one host ("api.example.com",
// "localhost:8080"; compared in canonical form, so "API.example.com:443"
// is the same host, see CanonicalHost), replacing WithLimits for it.
func WithHostLimits(host string, limits ...srl.Limit) Option {
	return func(c *config) {
		if validLimits(c, "WithHostLimits "+host, limits) {
			hl := c.host(host)
			hl.fixed, hl.fixedSet = limits, true
		}
	}
}

// WithHostDefaultLimits sets the default limits of one host, replacing
// WithDefaultLimits for it.
func WithHostDefaultLimits(host string, limits ...srl.Limit) Option {
	return func(c *config) {
		if validLimits(c, "WithHostDefaultLimits "+host, limits) {
			hl := c.host(host)
			hl.defaults, hl.defaultsSet = limits, true
		}
	}
}

// WithMaxWait bounds how long one request waits in all: for its budget,
// for a server's Retry-After before a retry, and for each retry's budget,
// together. A request that would wait longer fails at once with a
// *smartratelimit.LimitError (a retry that cannot be admitted in time
// returns the last response instead); the request's own context deadline
// bounds the wait too. Default 30s.
func WithMaxWait(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("max wait %v must be positive", d)
			return
		}
		c.maxWait = d
	}
}

// WithProbe sets the probe lease: while a host's quota is unknown (the
// first requests to it, unless default limits stand in) or only assumed
// after its window reset, one request goes first and the others wait for
// its response, at most timeout, so that one response teaches the fleet
// before anyone spends (no 429s even in the first window). It costs one
// round trip of the server's at a cold start and after each reset. A
// server that answers the probe without any rate-limit header is not
// probed again for smartratelimit.BareFor. 0 turns probing off. Default
// DefaultProbeTimeout (2s).
func WithProbe(timeout time.Duration) Option {
	return func(c *config) {
		if timeout < 0 || timeout > srl.MaxHorizon {
			c.fail("probe timeout %v outside [0, %v]", timeout, srl.MaxHorizon)
			return
		}
		c.probe = timeout
	}
}

// WithInlineObserve stores what every response said before RoundTrip
// returns it. By default, with a backend across the network, what a
// roomy success said is stored in the background (see the package doc:
// one round trip per request); refusals, blocks, probes and nearly spent
// quotas are always stored first.
func WithInlineObserve() Option {
	return func(c *config) { c.inlineObserve = true }
}

// WithLease lets the Transport take up to n requests at once from a roomy
// server quota in the shared backend and admit them one by one from
// memory, so that most requests make no round trip before they are sent
// (see "Leases" in the package doc for what it takes and what it gives
// up). n is at most MaxLease; 0 or 1 (the default) leases nothing.
// WithInlineObserve turns leases off.
func WithLease(n int) Option {
	return func(c *config) {
		if n < 0 || n > MaxLease {
			c.fail("lease of %d requests outside [0, %d]", n, MaxLease)
			return
		}
		c.lease = n
	}
}

// WithRaiseOnLimit makes a request that is not admitted at once fail with a
// *smartratelimit.LimitError (errors.Is ErrRateLimited, errors.As for the
// retry time) instead of waiting. Default off: requests wait.
func WithRaiseOnLimit() Option {
	return func(c *config) { c.raiseOnLimit = true }
}

// WithSafetyReserve leaves a fraction of every server-advertised budget
// unused (0.1 keeps 10% back), as a margin for callers outside the fleet
// and for requests in flight. Default 0.
func WithSafetyReserve(fraction float64) Option {
	return func(c *config) {
		if !(fraction >= 0 && fraction < 1) {
			c.fail("safety reserve %v must be in [0, 1)", fraction)
			return
		}
		c.reserve = fraction
	}
}

// WithKeyFunc sets how a request's budget is named. Default HostKey; see
// KeyByCredential to partition by a token.
func WithKeyFunc(f KeyFunc) Option {
	return func(c *config) {
		if f == nil {
			c.fail("nil key func")
			return
		}
		c.keyFunc = f
	}
}

// WithRetry retries failed requests under p (see RetryPolicy). Default: no
// retries, so that a Transport stacked under another retrying client
// (go-retryablehttp, an SDK) does not multiply its attempts.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) {
		if p.MaxRetries < 0 || p.BaseDelay < 0 || p.MaxDelay < 0 || p.Jitter < 0 || p.Jitter > 1 {
			c.fail("retry policy %+v: negative values or jitter outside [0, 1]", p)
			return
		}
		p.RetryOn = append([]int(nil), p.RetryOn...)
		c.retry = p
	}
}

// WithHeaderMap reads the server's budget from custom header names as well
// as from every standard dialect; the custom names take precedence.
func WithHeaderMap(m HeaderMap) Option {
	return func(c *config) {
		c.headerMap = &dialect.Mapping{Limit: m.Limit, Remaining: m.Remaining, Reset: m.Reset, RetryAfter: m.RetryAfter}
	}
}

// WithObserver sends the client's events to o: requests sent and their
// outcomes, waits, refusals, retries, quotas learned, blocks, malformed
// headers, and (with WithRedis) the limiter's decisions, backend errors
// and degraded transitions. Pass a *metrics.Collector to export them as
// Prometheus metrics or JSON. May be given several times. Default none.
func WithObserver(o srl.Observer) Option {
	return func(c *config) { c.observer = srl.Observers(c.observer, o) }
}

// WithLogger logs waits, refusals, blocks, learned quotas, malformed
// headers and outages through l (see smartratelimit.NewLogObserver);
// never URLs, headers, bodies or credentials. Default: silent.
func WithLogger(l *slog.Logger) Option {
	return WithObserver(srl.NewLogObserver(l))
}
