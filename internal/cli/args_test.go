package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// seeded starts a miniredis holding state for keys, each spent once
// against 60 per minute.
func seeded(t *testing.T, keys ...string) (url string, rdb *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(5*time.Second))
	t.Cleanup(func() { _ = l.Close() })
	for _, k := range keys {
		if _, err := l.Allow(context.Background(), k, srl.PerMinute(60)); err != nil {
			t.Fatal(err)
		}
	}
	return "redis://" + mr.Addr() + "/0", rdb
}

func TestFlagsAnywhere(t *testing.T) {
	url, _ := seeded(t, "api.github.com", "api.openai.com", "--json")
	tests := []struct {
		name string
		args []string
		code int
		out  []string // in stdout
		err  string   // in stderr
	}{
		{"flag after the key", []string{"status", "api.github.com", "--redis", url}, 0, []string{"api.github.com", "limit 60/1m0s"}, ""},
		{"flag=value after the key", []string{"status", "api.github.com", "--redis=" + url}, 0, []string{"limit 60/1m0s"}, ""},
		{"--json after the key", []string{"status", "--redis", url, "api.github.com", "--json"}, 0, []string{`"key":"api.github.com"`}, ""},
		{"flags between keys", []string{"status", "api.github.com", "--redis", url, "api.openai.com", "--json"}, 0, []string{`"key":"api.github.com"`, `"key":"api.openai.com"`}, ""},
		{"-- ends the flags", []string{"status", "--redis", url, "--json", "--", "--json"}, 0, []string{`"key":"--json"`}, ""},
		{"-- then a flag-looking key", []string{"status", "--redis", url, "--", "--redis"}, 1, nil, `no state for key "--redis"`},
		{"reset KEY --yes", []string{"reset", "api.openai.com", "--yes", "--redis", url}, 0, []string{`reset "api.openai.com"`}, ""},
		{"keys with flags in any order", []string{"keys", "--json", "--redis", url, "--prefix", "srl:"}, 0, []string{`"api.github.com"`}, ""},
		{"unknown flag after the key", []string{"status", "api.github.com", "--bogus", "--redis", url}, 2, nil, "flag provided but not defined: -bogus"},
		{"flag without its value", []string{"status", "api.github.com", "--redis"}, 2, nil, "flag needs an argument: -redis"},
		{"bad value", []string{"status", "k", "--interval", "soon", "--redis", url}, 2, nil, `invalid value "soon" for flag -interval`},
		{"keys takes no argument", []string{"keys", "--redis", url, "extra"}, 2, nil, "usage: smartratelimit keys"},
		{"demo takes no argument", []string{"demo", "extra"}, 2, nil, "usage: smartratelimit demo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.args...)
			ok := code == tc.code && strings.Contains(errOut, tc.err)
			for _, want := range tc.out {
				ok = ok && strings.Contains(out, want)
			}
			if !ok {
				t.Fatalf("%q: exit %d\nstdout: %s\nstderr: %s\nwant exit %d, stdout with %q, stderr with %q", tc.args, code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

func TestHelpOfEachCommand(t *testing.T) {
	url, _ := seeded(t)
	for _, cmd := range []string{"demo", "status", "keys", "reset"} {
		for _, args := range [][]string{
			{cmd, "-h"}, {cmd, "--help"}, {cmd, "-help"}, {"help", cmd},
			{cmd, "some.key", "--redis", url, "-h"}, // anywhere on the line, and before connecting
		} {
			code, out, errOut := runCmd(t, args...)
			if code != 0 || !strings.HasPrefix(out, "usage: smartratelimit "+cmd) || errOut != "" {
				t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s\nwant exit 0 and %s's usage on stdout only", args, code, out, errOut, cmd)
			}
		}
	}
	// After --, -h is a key like any other.
	code, _, errOut := runCmd(t, "status", "--redis", url, "--", "-h")
	if code != 1 || !strings.Contains(errOut, `no state for key "-h"`) {
		t.Errorf("status -- -h: exit %d, %s", code, errOut)
	}
}

// The --json output parses as one document whatever the flag order.
func TestJSONAfterTheKeys(t *testing.T) {
	url, _ := seeded(t, "a.example.com")
	code, out, errOut := runCmd(t, "status", "a.example.com", "--redis", url, "--json")
	var got []struct {
		Key   string `json:"key"`
		Found bool   `json:"found"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || !got[0].Found || got[0].Key != "a.example.com" {
		t.Fatalf("exit %d, %q %s", code, out, errOut)
	}
}
