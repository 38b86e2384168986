package integration

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/httpclient"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// writeFault makes a real redis-server refuse every write, and undoes it.
type writeFault struct {
	name  string
	args  []string // the server's extra arguments
	reply string   // the error reply's prefix
	start func(t *testing.T, admin *redis.Client)
	end   func(t *testing.T, admin *redis.Client)
}

var writeFaults = []writeFault{
	{
		// maxmemory below what the server already uses, with noeviction:
		// every write answers OOM.
		name: "OOM", reply: "OOM",
		start: func(t *testing.T, admin *redis.Client) {
			mustDo(t, admin, "config", "set", "maxmemory-policy", "noeviction")
			mustDo(t, admin, "config", "set", "maxmemory", "1")
		},
		end: func(t *testing.T, admin *redis.Client) { mustDo(t, admin, "config", "set", "maxmemory", "0") },
	},
	{
		// An RDB save that fails (its directory is gone) with save points
		// set and stop-writes-on-bgsave-error: every write answers MISCONF.
		name: "MISCONF", reply: "MISCONF", args: []string{"--enable-protected-configs", "yes"},
		start: func(t *testing.T, admin *redis.Client) {
			dir := filepath.Join(t.TempDir(), "rdb")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			mustDo(t, admin, "config", "set", "dir", dir)
			mustDo(t, admin, "config", "set", "save", "3600 1")
			mustDo(t, admin, "config", "set", "stop-writes-on-bgsave-error", "yes")
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			mustDo(t, admin, "bgsave")
			eventually(t, 5*time.Second, "the RDB save fails", func() bool {
				info, _ := admin.Info(context.Background(), "persistence").Result()
				return strings.Contains(info, "rdb_last_bgsave_status:err") && !strings.Contains(info, "rdb_bgsave_in_progress:1")
			})
		},
		end: func(t *testing.T, admin *redis.Client) {
			mustDo(t, admin, "config", "set", "dir", t.TempDir())
			mustDo(t, admin, "bgsave")
			eventually(t, 5*time.Second, "the RDB save succeeds", func() bool {
				info, _ := admin.Info(context.Background(), "persistence").Result()
				return strings.Contains(info, "rdb_last_bgsave_status:ok")
			})
		},
	},
}

func mustDo(t *testing.T, c *redis.Client, args ...any) {
	t.Helper()
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// TestRedisThatCannotWrite: a Redis that cannot write (OOM under
// maxmemory with noeviction, MISCONF after a failed RDB save) is an outage
// of the shared store, not a mistake of the caller: every policy decides
// (degraded, counted, the degraded transition heard once), the HTTP client
// keeps sending, and the limiter is back on Redis by itself once Redis can
// write again.
func TestRedisThatCannotWrite(t *testing.T) {
	for _, f := range writeFaults {
		t.Run(f.name, func(t *testing.T) {
			srv := ownRedis(t, f.args...)
			admin := newClient(t, srv.Addr, nil)
			limit := srl.PerSecond(100).WithBurst(10)

			tr := &transitions{}
			local := redislimit.New(newClient(t, srv.Addr, nil), redislimit.WithDecisionTimeout(budget),
				redislimit.WithOnDegraded(tr.record), redislimit.WithBreaker(3, 50*time.Millisecond, 200*time.Millisecond))
			defer local.Close()
			open := redislimit.New(newClient(t, srv.Addr, nil), redislimit.WithFailurePolicy(redislimit.FailOpen), redislimit.WithDecisionTimeout(budget))
			defer open.Close()
			closed := redislimit.New(newClient(t, srv.Addr, nil), redislimit.WithFailurePolicy(redislimit.FailClosed), redislimit.WithDecisionTimeout(budget))
			defer closed.Close()

			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			defer api.Close()
			client := httpclient.New(httpclient.WithRedis(newClient(t, srv.Addr, nil), redislimit.WithDecisionTimeout(budget)))
			defer httpclient.TransportOf(client).Close()

			// The raw reply really is the fault's.
			f.start(t, admin)
			if err := admin.Set(context.Background(), "probe", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), f.reply) {
				t.Fatalf("a write with the fault in force: %v, want %s", err, f.reply)
			}

			for i := 0; i < 20; i++ {
				d, err := local.Allow(context.Background(), "w", limit)
				if err != nil || !d.Degraded {
					t.Fatalf("fallback decision %d: %+v, %v; want a degraded decision, no error", i, d, err)
				}
				if d, err := open.Allow(context.Background(), "w", limit); err != nil || !d.Allowed || !d.Degraded {
					t.Fatalf("fail-open decision %d: %+v, %v", i, d, err)
				}
				if _, err := closed.Allow(context.Background(), "w", limit); !errors.Is(err, redislimit.ErrUnavailable) || errors.Is(err, redislimit.ErrMisconfigured) {
					t.Fatalf("fail-closed decision %d: %v; want ErrUnavailable", i, err)
				}
			}
			for i := 0; i < 5; i++ {
				resp, err := client.Get(api.URL)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d through the client: %v, %v", i, resp, err)
				}
				resp.Body.Close()
			}
			if !local.Degraded() {
				t.Fatal("the limiter does not report itself degraded")
			}

			f.end(t, admin)
			eventually(t, 5*time.Second, "back on Redis", func() bool {
				d, err := local.Allow(context.Background(), "w", limit)
				return err == nil && !d.Degraded
			})
			if got := tr.get(); len(got) != 2 || !got[0] || got[1] {
				t.Fatalf("transitions %v, want degraded once then recovered once", got)
			}
		})
	}
}

// TestMisconfigurationStaysLoud: what waiting will not fix is surfaced
// under every policy: a wrong password, and an ACL that denies the scripts.
func TestMisconfigurationStaysLoud(t *testing.T) {
	srv := ownRedis(t, "--requirepass", "s3cret-pass")
	for _, policy := range []redislimit.Policy{redislimit.FallbackLocal, redislimit.FailOpen} {
		l := redislimit.New(newClient(t, srv.Addr, &redis.Options{Password: "wrong"}), redislimit.WithFailurePolicy(policy), redislimit.WithDecisionTimeout(budget))
		_, err := l.Allow(context.Background(), "k", srl.PerSecond(1))
		if !errors.Is(err, redislimit.ErrMisconfigured) {
			t.Fatalf("policy %v with a wrong password: %v, want ErrMisconfigured", policy, err)
		}
		if strings.Contains(err.Error(), "s3cret-pass") {
			t.Fatalf("the error holds the password: %v", err)
		}
		l.Close()
	}
	admin := newClient(t, srv.Addr, &redis.Options{Password: "s3cret-pass"})
	mustDo(t, admin, "acl", "setuser", "noscripts", "on", ">pw", "~*", "+@all", "-evalsha", "-eval")
	l := redislimit.New(newClient(t, srv.Addr, &redis.Options{Username: "noscripts", Password: "pw"}), redislimit.WithDecisionTimeout(budget))
	defer l.Close()
	if _, err := l.Allow(context.Background(), "k", srl.PerSecond(1)); !errors.Is(err, redislimit.ErrMisconfigured) {
		t.Fatalf("an ACL denying scripts: %v, want ErrMisconfigured", err)
	}
}

// TestGarbageInTheHash: values the limiter did not write (a block ~1e16µs
// away, negative counters, malformed quotas, a TAT that is not a number)
// are bounded when read: no negative wait, no block past a day, no spin,
// and the key works again once the garbage is overwritten or expires.
func TestGarbageInTheHash(t *testing.T) {
	addr := sharedRedis(t)
	rdb := newClient(t, addr, nil)
	calls := &scriptCalls{}
	rdb.AddHook(calls)
	prefix := uniquePrefix(t)
	l := redislimit.New(rdb, redislimit.WithKeyPrefix(prefix))
	defer l.Close()
	limit := srl.PerSecond(10)
	ctx := context.Background()
	key := redislimit.RedisKey(prefix, "garbage")
	field := "g:10:1000000"
	garbage := []map[string]any{
		{"bu": "10000000000000000", "th": "-5"},
		{"bu": "-1e99", "pl": "99999999999999999999", "nh": "nan", field: "abc"},
		{"q": "requests 99999999999999999999 -3 1e30 -7 x 0 0 0 0 0 0 0 0;tokens", field: "-99999999999999"},
		{"q": "requests 10 1000000 99999999999999999 5 5 0 0 0 0 0 0 0 0", "ac": "-9", "as": "1", "rc": "99999999999999999999"},
	}
	for i, g := range garbage {
		if err := rdb.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, key, g).Err(); err != nil {
			t.Fatal(err)
		}
		d, err := l.Allow(ctx, "garbage", limit)
		if err != nil {
			t.Fatalf("garbage %d: %v", i, err)
		}
		if d.RetryAfter < 0 || d.RetryAfter > srl.MaxHorizon || d.ResetAfter < 0 || d.Delay < 0 {
			t.Fatalf("garbage %d: %+v; want bounded, non-negative waits", i, d)
		}
		st, err := l.Status(ctx, "garbage", limit)
		if err != nil || st.BlockedFor < 0 || st.BlockedFor > srl.MaxHorizon {
			t.Fatalf("garbage %d: status %+v, %v", i, st, err)
		}
		before := calls.n.Load()
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, werr := l.WaitRequest(wctx, srl.Request{Key: "garbage", N: 1, Limits: []srl.Limit{limit}})
		cancel()
		var le *srl.LimitError
		if werr != nil && !errors.As(werr, &le) && !errors.Is(werr, context.DeadlineExceeded) {
			t.Fatalf("garbage %d: wait: %v", i, werr)
		}
		if n := calls.n.Load() - before; n > 40 {
			t.Fatalf("garbage %d: a 300ms wait made %d script calls: it spins", i, n)
		}
	}
}
