package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/cli"
	"github.com/smartratelimit/smartratelimit/sqlitelimit"
)

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// seeded writes a store with a learned quota on one key and pacing on
// another, and returns its URL.
func seeded(t *testing.T) (path, url string) {
	path = filepath.Join(t.TempDir(), "rate_limits.db")
	s, err := sqlitelimit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Observe(ctx, "api.github.com", srl.Observation{Limit: 5000, Remaining: 4990, Reset: time.Hour, Succeeded: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Allow(ctx, "paced.example", srl.PerMinute(60).WithBurst(10)); err != nil {
		t.Fatal(err)
	}
	return path, "sqlite:///" + path
}

func TestOperatorCommandsOnSQLite(t *testing.T) {
	path, url := seeded(t)

	code, out, errOut := run(t, "", "keys", "--store", url)
	if code != 0 || out != "api.github.com\npaced.example\n" || !strings.Contains(errOut, "2 keys in sqlite:///") {
		t.Fatalf("keys: exit %d\n%s\n%s", code, out, errOut)
	}
	// --redis and REDIS_URL take the same URL.
	t.Setenv("REDIS_URL", url)
	if code, out2, _ := run(t, "", "keys"); code != 0 || out2 != out {
		t.Fatalf("keys from REDIS_URL: exit %d\n%s", code, out2)
	}
	t.Setenv("REDIS_URL", "")

	code, out, errOut = run(t, "", "status", "--redis", url, "api.github.com", "paced.example")
	if code != 0 || !strings.Contains(out, "4990 of 5000 left") || !strings.Contains(out, "limit 60/1m0s") || !strings.Contains(out, "in sqlite:///"+path) {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = run(t, "", "status", "--json", "--store", url, "api.github.com")
	var js []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js) != 1 || js[0]["found"] != true || js[0]["redis_key"] != nil {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "", "status", "--store", url, "nope"); code != 1 || !strings.Contains(errOut, `no state for key "nope" in sqlite:///`) {
		t.Fatalf("status of an absent key: exit %d\n%s", code, errOut)
	}

	if code, out, _ := run(t, "n\n", "reset", "--store", url, "api.github.com"); code != 1 || !strings.Contains(out, "Reset") {
		t.Fatalf("reset answered no: exit %d\n%s", code, out)
	}
	if code, out, errOut := run(t, "", "reset", "--yes", "--store", url, "api.github.com"); code != 0 || out != "reset \"api.github.com\"\n" {
		t.Fatalf("reset: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run(t, "", "keys", "--store", url); code != 0 || out != "paced.example\n" {
		t.Fatalf("keys after reset: exit %d\n%s", code, out)
	}
}

func TestSQLiteURLMistakes(t *testing.T) {
	_, url := seeded(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys", "--store", "sqlite:///" + filepath.Join(dir, "typo.db")}, 1, "no SQLite store at"},
		{[]string{"keys", "--store", "sqlite://host/x.db"}, 2, "the path starts at the third slash"},
		{[]string{"keys", "--store", "sqlite://" + strings.TrimPrefix(url, "sqlite:///")}, 1, "for /" + strings.TrimPrefix(url, "sqlite:////") + " write sqlite:////"},
		{[]string{"keys", "--store", url, "--tls-ca", "ca.pem"}, 2, "--tls-ca is for rediss://"},
		{[]string{"keys", "--store", url, "--prefix", "x:"}, 2, "--prefix is for Redis"},
		{[]string{"keys", "--store", "memory://"}, 2, "memory:// is the memory of one process"},
	} {
		code, _, errOut := run(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d\n%s\nwant exit %d saying %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if _, err := filepath.Glob(filepath.Join(dir, "typo.db*")); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "typo.db*")); len(m) > 0 {
		t.Fatalf("a mistyped path created %v", m)
	}
}
