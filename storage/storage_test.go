package storage

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

const secret = "s3cr3t-pw"

func TestParseEveryForm(t *testing.T) {
	tests := []struct {
		url  string
		kind Kind
		path string
	}{
		{"memory://", KindMemory, ""},
		{"memory:///", KindMemory, ""},
		{"MEMORY://", KindMemory, ""},
		{"redis://localhost:6379/0", KindRedis, ""},
		{"redis://user:" + secret + "@localhost:6379/2", KindRedis, ""},
		{"rediss://:" + secret + "@redis.example:6380", KindRedis, ""},
		{"redis://a:7000?addr=b:7001&addr=c:7002", KindCluster, ""},
		{"rediss://u:" + secret + "@a:7000?addr=b:7001", KindCluster, ""},
		{"redis+sentinel://s1:26379,s2:26379/mymaster", KindSentinel, ""},
		{"rediss+sentinel://u:" + secret + "@s1:26379/mymaster/3", KindSentinel, ""},
		{"sqlite:///rate_limits.db", KindSQLite, "rate_limits.db"},
		{"sqlite:///data/limits.db", KindSQLite, "data/limits.db"},
		{"sqlite:////var/lib/app/limits.db", KindSQLite, "/var/lib/app/limits.db"},
		{"sqlite:///with%20space.db", KindSQLite, "with space.db"},
		{"sqlite:///./here.db", KindSQLite, "./here.db"},
		{"sqlite:///../up.db?busy_timeout=10s", KindSQLite, "../up.db"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := Parse(tc.url)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Kind != tc.kind || got.Path != tc.path {
				t.Fatalf("kind %v path %q, want %v %q", got.Kind, got.Path, tc.kind, tc.path)
			}
			if strings.Contains(got.String(), secret) {
				t.Fatalf("String() shows the password: %s", got)
			}
			if got.URL() != tc.url {
				t.Fatalf("URL() = %q, want the URL as given", got.URL())
			}
		})
	}
}

func TestParseRejectsBadForms(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "empty"},
		{"localhost:6379", "unknown scheme"},
		{"rate_limits.db", "no scheme"},
		{"ftp://host/x", `unknown scheme "ftp"`},
		{"memory://host", "memory:// takes nothing"},
		{"memory://?x=1", "memory:// takes nothing"},
		{"redis://u:" + secret + "@[::1", "missing ']'"},
		{"redis://u:" + secret + "@host:6379/notadb", "invalid database"},
		{"redis://u:" + secret + "@host:port", "invalid port"},
		{"redis+sentinel://u:" + secret + "@/mymaster", "no sentinel address"},
		{"redis+sentinel://u:" + secret + "@s1:26379/", "no master name"},
		{"redis+sentinel://s1:26379/m/x", `bad database "x"`},
		{"redis+sentinel://s1:26379/m/1/2", "want /master-name[/db]"},
		{"sqlite://", "no file path"},
		{"sqlite:///", "no file path"},
		{"sqlite:////", "no file path"},
		{"sqlite:rate.db", "no // after sqlite:"},
		{"sqlite://rate_limits.db", `host "rate_limits.db"`},
		{"sqlite://host/x.db", `host "host"`},
		{"sqlite://u:" + secret + "@/x.db", "no user or password"},
		{"sqlite:///:memory:", "use memory://"},
		{"sqlite:///dir/", "names a directory"},
		{"sqlite:///x.db#frag", "unexpected #frag"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := Parse(tc.url)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrBadURL saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestOpenWithoutTheSQLiteImportNamesIt(t *testing.T) {
	_, _, err := Open("sqlite:///rate_limits.db")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
	if want := `import _ "github.com/smartratelimit/smartratelimit/sqlitelimit"`; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the import %s", err, want)
	}
}

func TestOpenMemory(t *testing.T) {
	b, c, err := Open("memory://", WithFallbackOptions(fallback.WithMaxKeys(10)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := b.(*fallback.Store); !ok {
		t.Fatalf("memory:// opened a %T", b)
	}
	if d, err := b.Acquire(context.Background(), srl.Request{Key: "k", N: 1, Limits: []srl.Limit{srl.PerMinute(1)}}); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestOpenRedisClosesWhatItOpened(t *testing.T) {
	mr := miniredis.RunT(t)
	mr.RequireAuth(secret)
	b, c, err := Open("redis://:"+secret+"@"+mr.Addr()+"/0", WithRedisOptions(redislimit.WithKeyPrefix("t:")))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := b.(*redislimit.Limiter)
	if !ok {
		t.Fatalf("redis:// opened a %T", b)
	}
	if d, err := l.Allow(context.Background(), "k", srl.PerMinute(1)); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	if len(mr.Keys()) != 1 || !strings.HasPrefix(mr.Keys()[0], "t:") {
		t.Fatalf("keys %v: the options did not reach the limiter", mr.Keys())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Allow(context.Background(), "k", srl.PerMinute(1)); err == nil {
		t.Fatal("the limiter still decides after Close")
	}
}

func TestRedisClient(t *testing.T) {
	mr := miniredis.RunT(t)
	// Each is built to honour context deadlines on its sockets.
	for _, c := range []struct {
		url, kind string
	}{
		{"redis://" + mr.Addr() + "/0", "one server"},
		{"redis://" + mr.Addr() + "?addr=" + mr.Addr(), "cluster"},
		{"redis+sentinel://127.0.0.1:1/m/2", "one server"},
	} {
		rdb, err := RedisClient(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		_ = rdb.Close()
		kind, honours := "", false
		switch r := rdb.(type) {
		case *redis.Client:
			kind, honours = "one server", r.Options().ContextTimeoutEnabled
		case *redis.ClusterClient:
			kind, honours = "cluster", r.Options().ContextTimeoutEnabled
		}
		if kind != c.kind || !honours {
			t.Fatalf("%s built a %T (ContextTimeoutEnabled %v), want a %s client that honours context deadlines", c.url, rdb, honours, c.kind)
		}
	}
	for _, u := range []string{"memory://", "sqlite:///x.db"} {
		if _, err := RedisClient(u); !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), "not a Redis URL") {
			t.Fatalf("%s: %v", u, err)
		}
	}
}

func TestRootCAsNeedTLS(t *testing.T) {
	pool := x509.NewCertPool()
	for _, u := range []string{"redis://u:" + secret + "@h:1", "redis://h:1?addr=h:2", "redis+sentinel://h:1/m"} {
		_, err := RedisClient(u, WithRootCAs(pool))
		if !errors.Is(err, ErrTLSRequired) || !strings.Contains(err.Error(), "rediss://") || strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"rediss://h:1", "rediss://h:1?addr=h:2", "rediss+sentinel://h:1/m"} {
		rdb, err := RedisClient(u, WithRootCAs(pool))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		_ = rdb.Close()
	}
}

type closeCount struct{ n *int }

func (c closeCount) Close() error { *c.n++; return nil }

func TestRegister(t *testing.T) {
	closed := 0
	var got *Target
	Register("testdb", func(tg *Target) (srl.Backend, io.Closer, error) {
		got = tg
		if tg.Query.Get("fail") != "" {
			return nil, nil, errors.New("cannot open " + tg.URL())
		}
		return fallback.New(), closeCount{&closed}, nil
	})
	b, c, err := Open("testdb://u:" + secret + "@host/name?x=1")
	if err != nil || b == nil {
		t.Fatal(err)
	}
	if got.Kind != KindOther || got.Scheme != "testdb" || got.Query.Get("x") != "1" {
		t.Fatalf("the opener got %+v", got)
	}
	_ = c.Close()
	if closed != 1 {
		t.Fatal("the closer of a registered backend was not returned")
	}
	// An opener's error names the URL it was given: masked all the same.
	if _, _, err := Open("testdb://u:" + secret + "@host/name?fail=1"); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v", err)
	}
	for _, scheme := range []string{"testdb", "redis", "memory"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) twice or over a built-in did not panic", scheme)
				}
			}()
			Register(scheme, func(*Target) (srl.Backend, io.Closer, error) { return nil, nil, nil })
		}()
	}
	if s := strings.Join(Schemes(), " "); !strings.Contains(s, "testdb") {
		t.Fatalf("Schemes() = %s", s)
	}
}
