package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/integration/internal/redisserver"
	"github.com/smartratelimit/smartratelimit/redislimit"
)

// The command under test, built once from the root module.
var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

func cli(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "srl-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
		cliPath = filepath.Join(dir, "smartratelimit")
		out, err := exec.Command("go", "build", "-C", "..", "-o", cliPath, "./cmd/smartratelimit").CombinedOutput()
		if err != nil {
			cliErr = err
			t.Logf("%s", out)
		}
	})
	if cliErr != nil {
		t.Fatalf("building the command: %v", cliErr)
	}
	return cliPath
}

// runCLI runs the command and returns its exit code and output.
func runCLI(t *testing.T, stdin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// seed puts state for two keys in Redis the way a fleet would. It builds
// the command first: the assertions read times that run from the seeding,
// and a first build on a machine with no build cache takes many seconds.
func seed(t *testing.T, addr, prefix string) {
	t.Helper()
	cli(t)
	l := redislimit.New(newClient(t, addr, nil), redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(5*time.Second))
	ctx := context.Background()
	for i := 0; i < 15; i++ {
		if _, err := l.Allow(ctx, "api.github.com", srl.PerMinute(60).WithBurst(60)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Observe(ctx, "api.github.com", srl.Observation{Limit: 5000, Remaining: 1250, Reset: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := l.Observe(ctx, "api.openai.com", srl.Observation{RetryAfter: 20 * time.Minute, Limited: true}); err != nil {
		t.Fatal(err)
	}
}

func TestCLIStatusKeysReset(t *testing.T) {
	addr := sharedRedis(t)
	url := "redis://" + addr + "/0"
	prefix := uniquePrefix(t)
	seed(t, addr, prefix)

	code, out, errOut := runCLI(t, "", nil, "status", "--redis", url, "--prefix", prefix, "api.github.com", "api.openai.com")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{`api\.github\.com`, `server quota\s+1250 of 5000 left, resets in 29m5\d`, `limit 60/1m0s burst 60\s+4[5-8] left, full in 1\d`,
		`utilization\s+75%`, `api\.openai\.com`, `blocked\s+for 19m5\d`, `utilization\s+100%`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("status output lacks %s:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, "", []string{"REDIS_URL=" + url}, "status", "--json", "--prefix", prefix, "api.github.com")
	var got []statusView
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 {
		t.Fatalf("status --json from REDIS_URL: exit %d, %q", code, out)
	}
	// 15 of the 60 per minute were spent moments ago; a second or two has
	// refilled one or two since.
	if g := got[0]; !g.Found || g.Quota == nil || g.Quota.Remaining != 1250 || len(g.Limits) != 1 ||
		g.Limits[0].Remaining < 45 || g.Limits[0].Remaining > 48 || g.Utilization != 0.75 {
		t.Fatalf("status --json: %+v", got[0])
	}

	code, _, errOut = runCLI(t, "", nil, "status", "--redis", url, "--prefix", prefix, "never.seen")
	if code != 1 || !strings.Contains(errOut, `no state for key "never.seen"`) {
		t.Fatalf("a missing key: exit %d, %q", code, errOut)
	}

	code, out, _ = runCLI(t, "", nil, "keys", "--redis", url, "--prefix", prefix)
	if code != 0 || out != "api.github.com\napi.openai.com\n" {
		t.Fatalf("keys: exit %d, %q", code, out)
	}

	code, _, errOut = runCLI(t, "n\n", nil, "reset", "--redis", url, "--prefix", prefix, "api.openai.com")
	if code != 1 || !strings.Contains(errOut, "aborted") {
		t.Fatalf("reset answered no: exit %d, %q", code, errOut)
	}
	code, out, _ = runCLI(t, "y\n", nil, "reset", "--redis", url, "--prefix", prefix, "api.openai.com")
	if code != 0 || !strings.Contains(out, `reset "api.openai.com"`) {
		t.Fatalf("reset answered yes: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "", nil, "reset", "--yes", "--redis", url, "--prefix", prefix, "api.github.com")
	if code != 0 {
		t.Fatalf("reset --yes: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "", nil, "keys", "--redis", url, "--prefix", prefix)
	if code != 0 || out != "" {
		t.Fatalf("keys after the resets: exit %d, %q", code, out)
	}
	code, _, errOut = runCLI(t, "", nil, "reset", "--yes", "--redis", url, "--prefix", prefix, "api.github.com")
	if code != 1 || !strings.Contains(errOut, "nothing to reset") {
		t.Fatalf("reset of a missing key: exit %d, %q", code, errOut)
	}
}

// statusView mirrors the command's --json output.
type statusView struct {
	Key   string `json:"key"`
	Found bool   `json:"found"`
	Quota *struct {
		Limit, Remaining int
	} `json:"quota"`
	Limits []struct {
		Limit     string `json:"limit"`
		Remaining int    `json:"remaining"`
	} `json:"limits"`
	Utilization float64 `json:"utilization"`
}

func TestCLIStatusWatch(t *testing.T) {
	addr := sharedRedis(t)
	prefix := uniquePrefix(t)
	seed(t, addr, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli(t), "status", "--watch", "--interval", "100ms", "--redis", "redis://"+addr, "--prefix", prefix, "api.github.com")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out := &lockedBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "1250 of 5000 left") < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if strings.Count(out.String(), "1250 of 5000 left") < 3 || err != nil {
		t.Fatalf("status --watch: %v, output:\n%s", err, out.String())
	}
}

func TestCLIConnectionErrors(t *testing.T) {
	free := "redis://127.0.0.1:" + strconv.Itoa(redisserver.FreePort(t))
	tests := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"status", "--redis", "ftp://host", "k"}, nil, 2, "bad store URL"},
		{[]string{"status", "--redis", "redis://user:hunter2@[::1", "k"}, nil, 2, "bad store URL"},
		{[]string{"keys"}, []string{"REDIS_URL="}, 2, "pass --redis (or --store) or set REDIS_URL"},
		{[]string{"status", "--redis", free, "k"}, nil, 1, "cannot reach Redis"},
		{[]string{"reset", "--yes", "--redis", "redis://user:hunter2@127.0.0.1:" + strings.TrimPrefix(free, "redis://127.0.0.1:"), "k"}, nil, 1, "xxxxx"},
		{[]string{"status", "--redis", "redis+sentinel://127.0.0.1:1/", "k"}, nil, 2, "no master name"},
		{[]string{"status", "--redis", free}, nil, 2, "usage: smartratelimit status"},
	}
	for _, tc := range tests {
		code, out, errOut := runCLI(t, "", tc.env, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit %d mentioning %q", tc.args, code, out+errOut, tc.code, tc.want)
		}
		if strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v printed the password: %q", tc.args, out+errOut)
		}
	}
}

// TestCLIClusterSentinelTLS: the cluster, sentinel and rediss:// forms.
func TestCLIClusterSentinelTLS(t *testing.T) {
	c, cc := startCluster(t)
	prefix := uniquePrefix(t)
	l := redislimit.New(cc, redislimit.WithKeyPrefix(prefix), redislimit.WithDecisionTimeout(5*time.Second))
	defer l.Close()
	for i := 0; i < 30; i++ {
		if _, err := l.Allow(context.Background(), "k"+strconv.Itoa(i)+".example.com", srl.PerMinute(1)); err != nil {
			t.Fatal(err)
		}
	}
	addrs := c.Addrs()
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	code, out, errOut := runCLI(t, "", nil, "keys", "--redis", url, "--prefix", prefix)
	if code != 0 || strings.Count(out, "\n") != 30 {
		t.Fatalf("keys on the cluster: exit %d, %d lines\n%s", code, strings.Count(out, "\n"), errOut)
	}
	code, out, errOut = runCLI(t, "", nil, "status", "--redis", url, "--prefix", prefix, "k7.example.com")
	if code != 0 || !strings.Contains(out, "limit 60/1h0m0s") && !strings.Contains(out, "limit 1/1m0s") {
		t.Fatalf("status on the cluster: exit %d\n%s%s", code, out, errOut)
	}

	s := redisserver.StartSentinels(t, 1)
	sURL := "redis+sentinel://" + strings.Join(s.Addrs(), ",") + "/" + s.MasterName
	code, _, errOut = runCLI(t, "", nil, "keys", "--redis", sURL)
	if code != 0 {
		t.Fatalf("keys through sentinels: exit %d, %s", code, errOut)
	}

	srv, caFile := redisserver.StartTLS(t)
	code, _, errOut = runCLI(t, "", nil, "keys", "--redis", "rediss://"+srv.Addr, "--tls-ca", caFile)
	if code != 0 {
		t.Fatalf("keys over TLS: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "", nil, "keys", "--redis", "rediss://"+srv.Addr)
	if code != 1 || !strings.Contains(errOut, "cannot reach Redis") {
		t.Fatalf("TLS without trusting the CA: exit %d, %s", code, errOut)
	}
}

// lockedBuffer is a bytes.Buffer read while a child process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
