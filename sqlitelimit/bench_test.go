package sqlitelimit

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/fallback"
)

// BenchmarkDecisions measures decisions per second, in OS processes of
// the helper each deciding as fast as it can for benchDuration, on one hot
// key and spread over 1,000 keys: SQLite (one file shared by the
// processes), Redis (one server shared by them; skipped without
// REDIS_ADDR or redis-server on PATH) and the in-memory twin (each
// process its own memory: nothing is shared, the ceiling). Every
// sub-benchmark runs once whatever -benchtime says and reports
// decisions/s, the sum over its processes.
//
//	go test -run '^$' -bench Decisions ./
func BenchmarkDecisions(b *testing.B) {
	redisURL := redisForBench(b)
	stores := []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return "sqlite:///" + filepath.Join(b.TempDir(), "bench.db") }},
		{"memory", func(*testing.B) string { return "memory://" }},
		{"redis", func(b *testing.B) string {
			if redisURL == "" {
				b.Skip("no Redis: set REDIS_ADDR or put redis-server on PATH")
			}
			return redisURL
		}},
	}
	for _, st := range stores {
		for _, procs := range []int{1, 4} {
			for _, keys := range []int{1, 1000} {
				name := st.name + "/procs=" + strconv.Itoa(procs) + "/keys=" + strconv.Itoa(keys)
				b.Run(name, func(b *testing.B) {
					b.ReportMetric(benchProcs(b, st.url(b), procs, keys), "decisions/s")
				})
			}
		}
	}
}

const benchDuration = 2 * time.Second

// benchProcs runs procs helper processes against url and returns their
// decisions per second, summed.
func benchProcs(b *testing.B, url string, procs, keys int) float64 {
	bin := racerBinary(b)
	if strings.HasPrefix(url, "sqlite:") {
		// Created before the race, so that no process times its schema.
		s, err := Open(strings.TrimPrefix(url, "sqlite:///"))
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
	type run struct {
		cmd *exec.Cmd
		out strings.Builder
		in  interface{ Close() error }
	}
	runs := make([]*run, procs)
	for i := range runs {
		r := &run{cmd: exec.Command(bin, "bench", "-url", url, "-keys", strconv.Itoa(keys), "-for", benchDuration.String())}
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
		in, err := r.cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		r.in = in
		if err := r.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		runs[i] = r
	}
	// Every process opens its store, then all start together.
	time.Sleep(300 * time.Millisecond)
	for _, r := range runs {
		_ = r.in.Close()
	}
	total := 0
	for _, r := range runs {
		if err := r.cmd.Wait(); err != nil {
			b.Fatalf("helper: %v\n%s", err, r.out.String())
		}
		n, err := strconv.Atoi(strings.TrimSpace(r.out.String()))
		if err != nil {
			b.Fatalf("helper printed %q", r.out.String())
		}
		total += n
	}
	return float64(total) / benchDuration.Seconds()
}

// redisForBench returns the URL of a Redis for the benchmark: REDIS_ADDR,
// else a redis-server started on a free loopback port for the run, else "".
func redisForBench(b *testing.B) string {
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		return "redis://" + addr + "/0"
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return ""
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", b.TempDir())
	if err := cmd.Start(); err != nil {
		return ""
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + port
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			_ = c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return "redis://" + addr + "/0"
			}
		}
	}
	return ""
}

// BenchmarkAcquire is one decision in this process: a transaction on the
// file against a map lookup in the twin.
func BenchmarkAcquire(b *testing.B) {
	limits := []srl.Limit{srl.PerSecond(1_000_000).WithBurst(1_000_000)}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		b    srl.Backend
	}{
		{"sqlite", open(b)},
		{"memory", fallback.New()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := tc.b.Acquire(ctx, srl.Request{Key: "hot", N: 1, Limits: limits}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
