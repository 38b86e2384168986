package storage

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/internal/redact"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// Forms lists the URL forms Open accepts, for usage messages.
const Forms = `Store URL forms:
  memory://                                                    this process's memory only
  redis://[user:password@]host:port[/db]                      one Redis server
  rediss://...                                                 the same over TLS
  redis://host:port?addr=host2:port&addr=host3:port            a Redis Cluster (every address a seed)
  redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]
                                                               a Sentinel-managed primary (rediss+sentinel: TLS)
  sqlite:///relative/path.db                                   an SQLite file (one machine), relative path
  sqlite:////absolute/path.db                                  the same, absolute path`

// ErrBadURL is wrapped by every error about a URL's form.
var ErrBadURL = errors.New("storage: bad URL")

// ErrUnavailable is wrapped by the error of Open for a scheme whose
// backend lives in a module that was not imported.
var ErrUnavailable = errors.New("storage: backend not linked in")

// ErrTLSRequired reports a CA pool (WithRootCAs) given with a plain-text
// URL, where it would be ignored and the password sent in the clear.
var ErrTLSRequired = errors.New("storage: a CA pool needs TLS")

// Kind is the family of a URL's scheme.
type Kind int

// The kinds of store.
const (
	KindOther    Kind = iota // a scheme another module registered
	KindMemory               // memory://
	KindRedis                // redis://, rediss://, one server
	KindCluster              // redis:// or rediss:// with addr= seeds
	KindSentinel             // redis+sentinel://, rediss+sentinel://
	KindSQLite               // sqlite://
)

// Target is a parsed store URL.
type Target struct {
	// Scheme is the URL's scheme, lower-cased.
	Scheme string
	Kind   Kind
	// Path is the file a sqlite:// URL names: relative for
	// sqlite:///x.db, absolute for sqlite:////x.db. Empty for the other
	// built-in kinds.
	Path string
	// Query holds the URL's query parameters, for a registered backend
	// to read (a sqlite:// URL may carry the options sqlitelimit
	// documents).
	Query url.Values

	raw string
	url *url.URL
}

// String returns the URL with its secrets masked, for messages.
func (t *Target) String() string { return redact.URL(t.raw) }

// URL returns the URL as given, secrets included: for dialling, never
// for printing.
func (t *Target) URL() string { return t.raw }

// Shared reports whether processes other than this one see the budgets:
// every kind but memory://.
func (t *Target) Shared() bool { return t.Kind != KindMemory }

// external names the modules that provide schemes the root module knows
// of but does not link, so that Open can say which import is missing.
var external = map[string]string{
	"sqlite": "github.com/smartratelimit/smartratelimit/sqlitelimit",
}

// OpenFunc opens the backend a Target of a registered scheme names. The
// closer releases everything it opened; it is called once.
type OpenFunc func(t *Target) (srl.Backend, io.Closer, error)

var (
	regMu      sync.RWMutex
	registered = map[string]OpenFunc{}
)

// Register makes Open handle scheme with open. A module that provides a
// backend calls it from an init function, as sqlitelimit does for
// "sqlite". It panics when scheme is a built-in one, already registered,
// or open is nil: those are programming errors, found at start-up.
func Register(scheme string, open OpenFunc) {
	scheme = strings.ToLower(scheme)
	if open == nil {
		panic("storage: Register of " + scheme + " with a nil OpenFunc")
	}
	if builtin(scheme) {
		panic("storage: Register of the built-in scheme " + scheme)
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registered[scheme]; dup {
		panic("storage: Register called twice for " + scheme)
	}
	registered[scheme] = open
}

func builtin(scheme string) bool {
	switch scheme {
	case "memory", "redis", "rediss", "redis+sentinel", "rediss+sentinel":
		return true
	}
	return false
}

func opener(scheme string) OpenFunc {
	regMu.RLock()
	defer regMu.RUnlock()
	return registered[scheme]
}

// Schemes returns every scheme Open handles now, sorted.
func Schemes() []string {
	out := []string{"memory", "redis", "redis+sentinel", "rediss", "rediss+sentinel"}
	regMu.RLock()
	for s := range registered {
		out = append(out, s)
	}
	regMu.RUnlock()
	sort.Strings(out)
	return out
}

// bad builds an error about rawURL's form: the URL masked, the reason
// with any URL in it masked too.
func bad(rawURL, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadURL, redact.URL(rawURL), redact.Text(fmt.Sprintf(format, args...)))
}

// urlReason drops the URL a *url.Error quotes (the message that wraps it
// names it already, masked) and keeps its reason.
func urlReason(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Parse reads a store URL without connecting to anything. It checks the
// form of every built-in kind (a Redis URL as go-redis would read it, a
// sqlite:// path); a registered scheme's details are its OpenFunc's to
// check.
func Parse(rawURL string) (*Target, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, bad(rawURL, "%v", redact.Error(urlReason(err)))
	}
	if u.Scheme == "" {
		return nil, bad(rawURL, "no scheme; want one of %s://", strings.Join(Schemes(), "://, "))
	}
	t := &Target{Scheme: u.Scheme, Query: u.Query(), raw: rawURL, url: u}
	switch u.Scheme {
	case "memory":
		t.Kind = KindMemory
		if u.Opaque != "" || u.Host != "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, bad(rawURL, "memory:// takes nothing after the scheme")
		}
	case "redis", "rediss":
		t.Kind = KindRedis
		if len(t.Query["addr"]) > 0 {
			t.Kind = KindCluster
			_, err = redis.ParseClusterURL(rawURL)
		} else {
			_, err = redis.ParseURL(rawURL)
		}
	case "redis+sentinel", "rediss+sentinel":
		t.Kind = KindSentinel
		_, err = sentinelOptions(u)
	case "sqlite":
		t.Kind = KindSQLite
		t.Path, err = sqlitePath(u)
	default:
		t.Kind = KindOther
		if opener(u.Scheme) == nil && external[u.Scheme] == "" {
			return nil, bad(rawURL, "unknown scheme %q; want one of %s://", u.Scheme, strings.Join(Schemes(), "://, "))
		}
	}
	if err != nil {
		return nil, bad(rawURL, "%v", redact.Error(urlReason(err)))
	}
	return t, nil
}

// sqlitePath reads SQLAlchemy's form: sqlite:/// then the path, relative
// unless it starts with one more slash.
func sqlitePath(u *url.URL) (string, error) {
	const forms = "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
	switch {
	case u.Opaque != "":
		return "", fmt.Errorf("no // after sqlite:; %s", forms)
	case u.User != nil:
		return "", fmt.Errorf("an SQLite file has no user or password; %s", forms)
	case u.Host != "":
		return "", fmt.Errorf("host %q: an SQLite file is local, the path starts at the third slash; %s", u.Host, forms)
	case u.Fragment != "":
		return "", fmt.Errorf("unexpected #%s; %s", u.Fragment, forms)
	}
	p := strings.TrimPrefix(u.Path, "/")
	switch {
	case p == "" || p == "/":
		return "", fmt.Errorf("no file path; %s", forms)
	case p == ":memory:":
		return "", errors.New("an in-memory SQLite database is private to the process: use memory://")
	case strings.HasSuffix(p, "/"):
		return "", fmt.Errorf("path %q names a directory; %s", p, forms)
	}
	return p, nil
}

// Option configures what Open and RedisClient build.
type Option func(*options)

type options struct {
	redis    []redislimit.Option
	fallback []fallback.Option
	roots    *x509.CertPool
}

// WithRedisOptions configures the redislimit.Limiter Open builds for a
// Redis URL (failure policy, key prefix, observer…).
func WithRedisOptions(opts ...redislimit.Option) Option {
	return func(o *options) { o.redis = append(o.redis, opts...) }
}

// WithFallbackOptions configures the fallback.Store Open builds for
// memory://.
func WithFallbackOptions(opts ...fallback.Option) Option {
	return func(o *options) { o.fallback = append(o.fallback, opts...) }
}

// WithRootCAs checks a rediss:// (or rediss+sentinel://) server's
// certificate against roots instead of the system's CAs. With a
// plain-text URL it is an error wrapping ErrTLSRequired: the CAs would be
// ignored and the password sent in the clear.
func WithRootCAs(roots *x509.CertPool) Option {
	return func(o *options) { o.roots = roots }
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// Open opens the store rawURL names and returns it with what closes
// everything Open opened (for a Redis URL, the limiter and its client;
// for memory://, nothing). It does not connect: a Redis limiter serves
// from its in-memory fallback until Redis answers, as redislimit.New's
// does. A scheme whose backend module is not imported fails with an
// error wrapping ErrUnavailable that names the import.
func Open(rawURL string, opts ...Option) (srl.Backend, io.Closer, error) {
	t, err := Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	o := collect(opts)
	switch t.Kind {
	case KindMemory:
		return fallback.New(o.fallback...), nopCloser{}, nil
	case KindRedis, KindCluster, KindSentinel:
		rdb, err := t.redisClient(o)
		if err != nil {
			return nil, nil, err
		}
		l := redislimit.New(rdb, o.redis...)
		return l, closers{l, rdb}, nil
	}
	open := opener(t.Scheme)
	if open == nil {
		mod := external[t.Scheme]
		return nil, nil, fmt.Errorf("%w: %s:// needs the backend in %s, which this program does not import: add\n\timport _ %q\n(its own module: go get %s)",
			ErrUnavailable, t.Scheme, mod, mod, mod)
	}
	b, c, err := open(t)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: opening %s: %w", t, redact.Error(err))
	}
	if c == nil {
		c = nopCloser{}
	}
	return b, c, nil
}

// RedisClient returns a go-redis client for a Redis URL, in any of the
// forms Open accepts (one server, Cluster, Sentinel), without connecting.
// The caller closes it. Like the client Open builds, it honours context
// deadlines on its sockets (ContextTimeoutEnabled, which a URL cannot
// set), as redislimit recommends: its decision budget then bounds a call
// without a goroutine of its own.
func RedisClient(rawURL string, opts ...Option) (redis.UniversalClient, error) {
	t, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch t.Kind {
	case KindRedis, KindCluster, KindSentinel:
		return t.redisClient(collect(opts))
	}
	return nil, bad(rawURL, "not a Redis URL (scheme %q); want redis://, rediss://, redis+sentinel:// or rediss+sentinel://", t.Scheme)
}

func (t *Target) redisClient(o options) (redis.UniversalClient, error) {
	// trust applies the CA pool. A nil TLS config means plain text, where
	// the pool would silently do nothing: refuse that instead.
	trust := func(c *tls.Config) error {
		switch {
		case o.roots == nil:
		case c == nil:
			return fmt.Errorf("%w, but %s:// is plain text: use rediss:// (or rediss+sentinel://)", ErrTLSRequired, t.Scheme)
		default:
			c.RootCAs = o.roots
		}
		return nil
	}
	fail := func(err error) (redis.UniversalClient, error) {
		if errors.Is(err, ErrTLSRequired) {
			return nil, err
		}
		return nil, bad(t.raw, "%v", redact.Error(urlReason(err)))
	}
	switch t.Kind {
	case KindCluster:
		opts, err := redis.ParseClusterURL(t.raw)
		if err != nil {
			return fail(err)
		}
		if err := trust(opts.TLSConfig); err != nil {
			return fail(err)
		}
		opts.ContextTimeoutEnabled = true
		return redis.NewClusterClient(opts), nil
	case KindSentinel:
		opts, err := sentinelOptions(t.url)
		if err != nil {
			return fail(err)
		}
		if err := trust(opts.TLSConfig); err != nil {
			return fail(err)
		}
		opts.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(opts), nil
	default:
		opts, err := redis.ParseURL(t.raw)
		if err != nil {
			return fail(err)
		}
		if err := trust(opts.TLSConfig); err != nil {
			return fail(err)
		}
		opts.ContextTimeoutEnabled = true
		return redis.NewClient(opts), nil
	}
}

func sentinelOptions(u *url.URL) (*redis.FailoverOptions, error) {
	if u.Host == "" {
		return nil, errors.New("no sentinel address")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if parts[0] == "" {
		return nil, errors.New("no master name in the path")
	}
	if len(parts) > 2 {
		return nil, fmt.Errorf("path %q: want /master-name[/db]", u.Path)
	}
	opts := &redis.FailoverOptions{MasterName: parts[0], SentinelAddrs: strings.Split(u.Host, ",")}
	if len(parts) > 1 {
		db, err := strconv.Atoi(parts[1])
		if err != nil || db < 0 {
			return nil, fmt.Errorf("bad database %q", parts[1])
		}
		opts.DB = db
	}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	if u.Scheme == "rediss+sentinel" {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// closers closes each in order and reports every failure.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
