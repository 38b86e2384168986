package cli

import (
	"bytes"
	"context"
	"flag"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// The secret planted in every URL below; no output may hold it.
const secret = "S3cr3t-Tok3n"

// leaks reports the forms of secret that s holds, as typed or escaped.
func leaks(s string) []string {
	var found []string
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), strings.ToLower(secret)} {
		if strings.Contains(s, form) {
			found = append(found, form)
		}
	}
	return found
}

// authRedis starts a miniredis that wants user admin with the secret, and
// seeds one key through it.
func authRedis(t *testing.T) (addr, goodURL string) {
	t.Helper()
	mr := miniredis.RunT(t)
	mr.RequireUserAuth("admin", secret)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), Username: "admin", Password: secret})
	t.Cleanup(func() { _ = rdb.Close() })
	l := redislimit.New(rdb, redislimit.WithDecisionTimeout(5*time.Second))
	t.Cleanup(func() { _ = l.Close() })
	ctx := context.Background()
	if _, err := l.Allow(ctx, "api.example.com", srl.PerMinute(60)); err != nil {
		t.Fatal(err)
	}
	if err := l.Observe(ctx, "api.example.com", srl.Observation{Limit: 100, Remaining: 40, Reset: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return mr.Addr(), "redis://admin:" + secret + "@" + mr.Addr() + "/0"
}

func TestNoOutputHoldsASecret(t *testing.T) {
	addr, good := authRedis(t)
	badURLs := map[string]string{
		"unparsable":                  "redis://admin:" + secret + "@[::1",
		"unparsable with a space":     "redis://admin:my " + secret + "@[::1",
		"unknown scheme":              "ftp://admin:" + secret + "@host",
		"secret in the query":         "redis://127.0.0.1:1/0?password=" + secret,
		"secret in a cluster query":   "redis://127.0.0.1:1?addr=127.0.0.1:2&token=" + secret,
		"sentinel without a master":   "redis+sentinel://admin:" + secret + "@127.0.0.1:1/",
		"sentinel unreachable":        "redis+sentinel://admin:" + secret + "@127.0.0.1:1/mymaster",
		"unreachable":                 "redis://admin:" + secret + "@127.0.0.1:1/0",
		"wrong password":              "redis://admin:" + secret + "x@" + addr + "/0",
		"escaped secret, unreachable": "redis://admin:" + url.PathEscape(secret+"/?@") + "@127.0.0.1:1/0",
	}
	// Every output path: help, usage of each command, -h, errors, JSON.
	withEnv := [][]string{
		nil, {"help"}, {"-h"}, {"--help"}, {"help", "status"}, {"frobnicate"},
		{"status"}, {"status", "-h"}, {"status", "--help"}, {"status", "--bogus"}, {"status", "--interval", "0", "k"},
		{"keys", "-h"}, {"keys", "extra"}, {"reset", "-h"}, {"reset"}, {"demo", "-h"}, {"demo", "--bogus"},
		{"status", "api.example.com"}, {"status", "--json", "api.example.com"}, {"status", "--json", "never.seen"},
		{"status", "never.seen"}, {"keys"}, {"keys", "--json"}, {"reset", "--yes", "never.seen"},
		{"reset", "api.example.com"}, {"status", "--tls-ca", "/nonexistent/ca.pem", "k"},
	}
	// Runs grouped by the REDIS_URL they see: a group sets it, then its
	// runs go in parallel.
	type group struct {
		name, env string
		runs      [][]string
	}
	groups := []group{{name: "REDIS_URL good", env: good, runs: withEnv}, {name: "no REDIS_URL"}}
	for name, u := range badURLs {
		groups = append(groups, group{"REDIS_URL " + name, u, [][]string{{"status", "--json", "k"}, {"keys", "-h"}}})
		groups[1].runs = append(groups[1].runs,
			[]string{"status", "--redis", u, "k"},
			[]string{"keys", "--json", "--redis", u},
			[]string{"reset", "--yes", "--redis", u, "k"},
			[]string{"demo", "--redis", u, "--duration", "100ms", "--quiet"},
		)
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Setenv("REDIS_URL", g.env)
			for _, args := range g.runs {
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					t.Parallel()
					// An unreachable Redis takes go-redis seconds of retries
					// to give up on; what it prints when it does is the same.
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					var out, errOut bytes.Buffer
					run(ctx, args, strings.NewReader(""), &out, &errOut)
					cancel()
					if l := leaks(out.String() + errOut.String()); l != nil {
						t.Errorf("output holds %q:\nstdout: %s\nstderr: %s", l, out.String(), errOut.String())
					}
					// Without the scrubbing writers too: every message must
					// redact on its own, the writers are only the second line
					// of defence.
					out.Reset()
					errOut.Reset()
					ctx, cancel = context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					dispatch(ctx, args, strings.NewReader(""), &out, &errOut)
					if l := leaks(out.String() + errOut.String()); l != nil {
						t.Errorf("a message holds %q before scrubbing:\nstdout: %s\nstderr: %s", l, out.String(), errOut.String())
					}
				})
			}
		})
	}
}

// The defaults of the flags are never computed from the environment, so
// no usage can print $REDIS_URL's value, and each says where it comes from.
func TestFlagDefaultsHoldNoSecret(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://admin:"+secret+"@db:6379/0")
	for _, name := range []string{"status", "keys", "reset"} {
		o := commands[name]()
		o.fs.VisitAll(func(f *flag.Flag) {
			if l := leaks(f.DefValue); l != nil {
				t.Errorf("%s --%s defaults to a secret", name, f.Name)
			}
		})
		if f := o.fs.Lookup("redis"); f.DefValue != "" || !strings.Contains(f.Usage, "(default $REDIS_URL)") {
			t.Errorf("%s --redis: default %q, usage %q; want no default and (default $REDIS_URL)", name, f.DefValue, f.Usage)
		}
		_, _, errOut := runCmd(t, name, "--bogus")
		if !strings.Contains(errOut, "(default $REDIS_URL)") {
			t.Errorf("%s usage does not say where the URL comes from:\n%s", name, errOut)
		}
	}
}

// A bad URL's message is followed by the URL forms, intact: redaction is
// for the URL given, not for the help's templates.
func TestBadURLShowsTheForms(t *testing.T) {
	for _, u := range []string{"redis://admin:" + secret + "@[::1", "ftp://host", "redis+sentinel://127.0.0.1:1/"} {
		code, _, errOut := runCmd(t, "status", "--redis", u, "k")
		if code != 2 || !strings.Contains(errOut, urlHelp) || strings.Count(errOut, "bad store URL") != 1 {
			t.Errorf("--redis %s: exit %d\n%s\nwant exit 2, one error, then the forms as written", u, code, errOut)
		}
	}
	t.Setenv("REDIS_URL", "")
	if code, _, errOut := runCmd(t, "keys"); code != 2 || !strings.Contains(errOut, "pass --redis (or --store) or set REDIS_URL\n"+urlHelp) {
		t.Errorf("no URL: exit %d\n%s", code, errOut)
	}
}
