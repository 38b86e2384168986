package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/smartratelimit/smartratelimit/integration/internal/redisserver"
)

// The shared Redis of this test binary, found once by sharedRedis.
var (
	sharedOnce sync.Once
	sharedAddr string
	sharedWhy  string // why there is none
	cleanup    []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanup {
		f()
	}
	os.Exit(code)
}

// requireRedis is true when a missing Redis must fail the tests instead of
// skipping them (CI sets SRL_REQUIRE_REDIS=1).
func requireRedis() bool { return os.Getenv("SRL_REQUIRE_REDIS") == "1" }

// noRedis skips the test with one loud line, or fails it when Redis is
// required.
func noRedis(t testing.TB, why string) {
	t.Helper()
	msg := "NO REAL REDIS, real-Redis tests skipped: " + why +
		" (set REDIS_ADDR, install redis-server, or run a Docker engine)"
	if requireRedis() {
		t.Fatal(msg + "; SRL_REQUIRE_REDIS=1 makes this a failure")
	}
	t.Skip(msg)
}

// sharedRedis returns the address of a real Redis shared by the tests of
// this binary: REDIS_ADDR if set, else a redis-server started from PATH,
// else a testcontainers Redis when a Docker engine answers.
func sharedRedis(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		if addr := os.Getenv("REDIS_ADDR"); addr != "" {
			sharedAddr = addr
			return
		}
		if redisserver.Available() {
			dir, err := os.MkdirTemp("", "srl-redis-")
			if err != nil {
				sharedWhy = err.Error()
				return
			}
			s, err := redisserver.StartProcess(dir)
			if err != nil {
				sharedWhy = err.Error()
				return
			}
			sharedAddr = s.Addr
			cleanup = append(cleanup, s.Kill, func() { _ = os.RemoveAll(dir) })
			return
		}
		addr, stop, err := startContainer()
		if err != nil {
			sharedWhy = "no redis-server on PATH and no container: " + err.Error()
			return
		}
		sharedAddr = addr
		cleanup = append(cleanup, stop)
	})
	if sharedAddr == "" {
		noRedis(t, sharedWhy)
	}
	return sharedAddr
}

// startContainer runs Redis in Docker through testcontainers-go. Without
// a Docker engine it fails fast instead of hanging.
func startContainer() (addr string, stop func(), err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := tcredis.Run(ctx, "redis:7-alpine")
	if err != nil {
		return "", nil, err
	}
	uri, err := c.ConnectionString(ctx)
	if err != nil {
		_ = c.Terminate(context.Background())
		return "", nil, err
	}
	opts, err := redis.ParseURL(uri)
	if err != nil {
		_ = c.Terminate(context.Background())
		return "", nil, err
	}
	return opts.Addr, func() { _ = c.Terminate(context.Background()) }, nil
}

// ownRedis starts a redis-server only this test uses, for tests that kill,
// restart or reconfigure it.
func ownRedis(t *testing.T, extra ...string) *redisserver.Server {
	t.Helper()
	if !redisserver.Available() {
		noRedis(t, "this test needs its own redis-server process and none is on PATH")
	}
	return redisserver.Start(t, extra...)
}

// newClient connects to addr; closed when the test ends.
func newClient(t testing.TB, addr string, opts *redis.Options) *redis.Client {
	t.Helper()
	if opts == nil {
		opts = &redis.Options{}
	}
	o := *opts
	o.Addr = addr
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniquePrefix keeps tests sharing one Redis apart.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("srltest:%d:", time.Now().UnixNano())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

// go-redis logs every failed dial; the fault tests provoke them by the
// hundred on purpose.
func init() { redis.SetLogger(quietLogger{}) }
