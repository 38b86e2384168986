package cli

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// row returns the first number of a result row.
func row(t *testing.T, out, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q row in:\n%s", name, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestDemoWithTheLimiter(t *testing.T) {
	code, out, errOut := runCmd(t, "demo", "--duration", "3s", "--window", "1s", "--limit", "20", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if n := row(t, out, "429"); n != 0 {
		t.Fatalf("%d 429s with the limiter on:\n%s", n, out)
	}
	ok, sent := row(t, out, "2xx"), row(t, out, "requests sent")
	if ok == 0 || ok != sent {
		t.Fatalf("%d of %d requests succeeded:\n%s", ok, sent, out)
	}
	if !strings.Contains(out, "embedded Redis") {
		t.Fatalf("the demo did not say where the budget lives:\n%s", out)
	}
}

// The LLM scenario: tokens bind, and the fleet, pricing each chat
// completion before sending it, is never refused and spends most of them.
func TestDemoLLM(t *testing.T) {
	code, out, errOut := runCmd(t, "demo", "--llm", "--duration", "4s", "--window", "1s", "--tokens", "8000", "--quiet", "--clients", "4", "--goroutines", "4")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if n := row(t, out, "429"); n != 0 {
		t.Fatalf("%d 429s with the limiter on:\n%s", n, out)
	}
	m := regexp.MustCompile(`budget used +(\d+) of (\d+) tokens`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no token budget in:\n%s", out)
	}
	used, budget := atoi(t, m[1]), atoi(t, m[2])
	if used*100 < 60*budget {
		t.Fatalf("%d of %d tokens used (< 60%%; the first and last windows are partial):\n%s", used, budget, out)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDemoWithoutTheLimiter(t *testing.T) {
	code, out, _ := runCmd(t, "demo", "--duration", "1s", "--window", "1s", "--limit", "20", "--quiet", "--no-limit")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := row(t, out, "429"); n == 0 {
		t.Fatalf("no 429s without the limiter, the demo shows nothing:\n%s", out)
	}
}

func TestDemoAgainstAnExternalRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	code, out, errOut := runCmd(t, "demo", "--redis", "redis://"+mr.Addr()+"/0", "--duration", "2s", "--window", "1s", "--limit", "10", "--quiet", "--clients", "3", "--goroutines", "4")
	if code != 0 || row(t, out, "429") != 0 || !strings.Contains(out, "Redis at "+mr.Addr()) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"demo", "--clients", "0"}, 2, "must be positive"},
		{[]string{"demo", "--redis", "ftp://nowhere"}, 2, "bad --redis URL"},
		{[]string{"demo", "--redis", "redis://127.0.0.1:1/0"}, 1, "unreachable"},
		{[]string{"demo", "--bogus"}, 2, "flag provided but not defined"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d mentioning %q", tc.args, code, out+errOut, tc.code, tc.want)
		}
	}
	if code, out, _ := runCmd(t, "help"); code != 0 || !strings.Contains(out, "demo") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}
