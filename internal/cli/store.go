package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/redact"
	"github.com/smartratelimit/smartratelimit/redislimit"
	"github.com/smartratelimit/smartratelimit/storage"
)

// store is what the operator commands need of a store: Redis, or any
// backend package storage opens that can list its keys (SQLite).
type store interface {
	// locate finds the state a KEY argument names.
	locate(ctx context.Context, arg string) (target, error)
	// limits returns the configured limits t has state for.
	limits(ctx context.Context, t target) ([]srl.Limit, error)
	status(ctx context.Context, key string, limits []srl.Limit) (srl.Status, error)
	keys(ctx context.Context) ([]string, error)
	reset(ctx context.Context, key string) error
	// where says where t's state lives, for "status": "redis key …".
	where(t target) string
	// scope says what "keys" listed: `under "prefix"`, `in file.db`.
	scope() string
	// missing explains that t has no state.
	missing(t target) string
	close()
}

// redisStore is an operator command's connection to Redis.
type redisStore struct {
	rdb     redis.UniversalClient
	limiter *redislimit.Limiter
	aliases *aliases
	prefix  string
}

func (s *redisStore) close() {
	_ = s.limiter.Close()
	_ = s.rdb.Close()
}

func (s *redisStore) locate(ctx context.Context, arg string) (target, error) {
	return locate(ctx, s.rdb, s.aliases, s.prefix, arg)
}

func (s *redisStore) limits(ctx context.Context, t target) ([]srl.Limit, error) {
	limits, _, err := limitsOf(ctx, s.rdb, t.stored)
	return limits, err
}

func (s *redisStore) status(ctx context.Context, key string, limits []srl.Limit) (srl.Status, error) {
	return s.limiter.Status(ctx, key, limits...)
}

func (s *redisStore) keys(ctx context.Context) ([]string, error) {
	return scanKeys(ctx, s.rdb, s.prefix)
}

func (s *redisStore) reset(ctx context.Context, key string) error { return s.limiter.Reset(ctx, key) }

func (s *redisStore) where(t target) string { return "redis key " + shownKey(t.stored) }

func (s *redisStore) scope() string { return fmt.Sprintf("under %q", s.prefix) }

func (s *redisStore) missing(t target) string {
	return fmt.Sprintf("no state for key %s (redis key %s): nothing was stored, it expired, or --prefix differs",
		quotedKey(t.name), shownKey(t.stored))
}

// lister is what a store other than Redis offers for the operator
// commands; sqlitelimit.Store has it.
type lister interface {
	Keys(ctx context.Context) ([]string, error)
	Limits(ctx context.Context, key string) ([]srl.Limit, bool, error)
}

// fileStore is a store package storage opened, that lists its keys
// itself: a key is stored under its own name.
type fileStore struct {
	backend srl.Backend
	list    lister
	closer  io.Closer
	name    string // the URL, masked
}

func (s *fileStore) close() { _ = s.closer.Close() }

func (s *fileStore) locate(ctx context.Context, arg string) (target, error) {
	readings := readKeys(arg)
	for _, key := range readings {
		if key == "" {
			continue // no backend stores the empty key
		}
		_, found, err := s.list.Limits(ctx, key)
		if err != nil {
			return target{}, err
		}
		if found {
			return target{name: key, key: key, stored: key, found: true}, nil
		}
	}
	return target{name: readings[0], key: readings[0], stored: readings[0]}, nil
}

func (s *fileStore) limits(ctx context.Context, t target) ([]srl.Limit, error) {
	limits, _, err := s.list.Limits(ctx, t.key)
	return limits, err
}

func (s *fileStore) status(ctx context.Context, key string, limits []srl.Limit) (srl.Status, error) {
	return s.backend.Peek(ctx, srl.Request{Key: key, Limits: limits})
}

func (s *fileStore) keys(ctx context.Context) ([]string, error) { return s.list.Keys(ctx) }

func (s *fileStore) reset(ctx context.Context, key string) error { return s.backend.Reset(ctx, key) }

func (s *fileStore) where(target) string { return "in " + s.name }

func (s *fileStore) scope() string { return "in " + s.name }

func (s *fileStore) missing(t target) string {
	return fmt.Sprintf("no state for key %s in %s: nothing was stored, or it expired", quotedKey(t.name), s.name)
}

// open connects to the store the flags name. An operator asks about the
// shared store, never about this process's memory: the Redis limiter
// never falls back. It returns the exit code of the failure when it
// fails, after printing why.
func (o *opsFlags) open(ctx context.Context, stderr io.Writer) (store, int) {
	raw := o.url()
	badURL := func(err error) (store, int) {
		fmt.Fprintf(stderr, "smartratelimit: %v\n%s\n", redact.Error(err), urlHelp)
		return nil, 2
	}
	if raw == "" {
		return badURL(fmt.Errorf("%w: none given; pass --redis (or --store) or set REDIS_URL", errBadURL))
	}
	t, err := storage.Parse(raw)
	if err != nil {
		return badURL(fmt.Errorf("%w: %v", errBadURL, err))
	}
	switch t.Kind {
	case storage.KindMemory:
		return badURL(fmt.Errorf("%w: memory:// is the memory of one process, which the command cannot see; give the URL of a shared store", errBadURL))
	case storage.KindRedis, storage.KindCluster, storage.KindSentinel:
		return o.openRedis(ctx, stderr)
	}
	if *o.tlsCA != "" {
		return badURL(fmt.Errorf("%w %s: --tls-ca is for rediss:// and rediss+sentinel:// only", errBadURL, t))
	}
	if o.set("prefix") {
		return badURL(fmt.Errorf("%w %s: --prefix is for Redis, where stores share one server; this store holds one set of keys", errBadURL, t))
	}
	if t.Kind == storage.KindSQLite {
		// The command only reads what exists: a typo must not create an
		// empty store and report it empty.
		if _, err := os.Stat(t.Path); err != nil {
			fmt.Fprintf(stderr, "smartratelimit: no SQLite store at %s: %v\n", t.Path, redact.Error(err))
			if _, absErr := os.Stat("/" + t.Path); absErr == nil && !filepath.IsAbs(t.Path) {
				// The likeliest slip: three slashes for an absolute path.
				fmt.Fprintf(stderr, "sqlite:/// takes a relative path; for /%s write sqlite:////%s\n", t.Path, t.Path)
			}
			return nil, 1
		}
	}
	b, closer, err := storage.Open(raw)
	if errors.Is(err, storage.ErrUnavailable) {
		fmt.Fprintf(stderr, "smartratelimit: %v\nThis build of the command links no backend for %s://; the SQLite one is\n"+
			"\tgo run github.com/smartratelimit/smartratelimit/sqlitelimit/cmd/smartratelimit\n", redact.Error(err), t.Scheme)
		return nil, 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit:", redact.Error(err))
		return nil, 1
	}
	l, ok := b.(lister)
	if !ok {
		_ = closer.Close()
		fmt.Fprintf(stderr, "smartratelimit: the store at %s cannot list its keys (a %T)\n", t, b)
		return nil, 1
	}
	return &fileStore{backend: b, list: l, closer: closer, name: t.String()}, 0
}

func (o *opsFlags) openRedis(ctx context.Context, stderr io.Writer) (store, int) {
	rdb, err := connect(ctx, o.url(), *o.tlsCA)
	if err != nil {
		if errors.Is(err, errBadURL) {
			fmt.Fprintf(stderr, "smartratelimit: %v\n%s\n", redact.Error(err), urlHelp)
			return nil, 2
		}
		fmt.Fprintln(stderr, "smartratelimit:", redact.Error(err))
		return nil, 1
	}
	al := &aliases{}
	rdb.AddHook(al)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(*o.prefix), redislimit.WithFailurePolicy(redislimit.FailClosed),
		redislimit.WithDecisionTimeout(3*time.Second))
	return &redisStore{rdb: rdb, limiter: l, aliases: al, prefix: *o.prefix}, 0
}

// set reports whether the flag name was given on the command line.
func (o *opsFlags) set(name string) bool {
	found := false
	o.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
