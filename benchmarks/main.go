// Command benchmarks measures smartratelimit beside its peers against the
// same Redis, in one run, and prints Markdown tables:
//
//	cd benchmarks && go run . [-d 3s] [-redis host:port]
//
// It starts redis-server from PATH on a free loopback port unless -redis
// (or REDIS_ADDR) names one. Scenarios, each with 64 goroutines: one hot
// key on the allowed path, 10,000 keys on the allowed path, and one
// exhausted key (every decision a refusal). Then the added latency of the
// HTTP Transport over a bare client, Redis memory per key, and the fleet
// measure (8 clients × 8 goroutines against an API that enforces and
// advertises its limit).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	dur := flag.Duration("d", 3*time.Second, "measuring time per contender and scenario")
	addr := flag.String("redis", os.Getenv("REDIS_ADDR"), "Redis address; default: start redis-server on a free port")
	only := flag.String("only", "", "run only the sections whose name contains this (decisions, transport, memory, fleet)")
	who := flag.String("contender", "", "measure only the limiter of this name, or those whose name contains it")
	scenarioFlag := flag.String("scenario", "", "run only the decision scenarios whose name contains this")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	scenarioFilter = *scenarioFlag
	if *who != "" {
		var kept []contender
		for _, c := range contenders {
			if c.name == *who {
				kept = []contender{c}
				break
			}
			if strings.Contains(c.name, *who) {
				kept = append(kept, c)
			}
		}
		contenders = kept
	}

	if *addr == "" {
		a, stop, err := startRedis()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks:", err)
			os.Exit(1)
		}
		defer stop()
		*addr = a
	}
	rdb := redis.NewClient(&redis.Options{Addr: *addr})
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmarks: Redis unreachable:", err)
		os.Exit(1)
	}
	version := "?"
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	fmt.Printf("# smartratelimit benchmarks\n\n%s, %s/%s, GOMAXPROCS=%d, %d CPUs; Redis %s on loopback (%s), sharing the CPUs with the benchmark. %v per measurement.\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), version, *addr, *dur)

	run := func(section string, f func()) {
		if *only == "" || strings.Contains(section, *only) {
			f()
		}
	}
	run("decisions", func() { decisions(rdb, *addr, *dur) })
	run("transport", func() { transport(*addr) })
	run("memory", func() { memory(rdb) })
	run("fleet", func() { fleet(*addr) })
}

// startRedis runs redis-server from PATH on a free loopback port.
func startRedis() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "srl-bench-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting redis-server (install it, or pass -redis): %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = os.RemoveAll(dir) }
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for i := 0; i < 100; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("redis-server on %s did not answer", addr)
}

const goroutines = 64

// scenarioFilter is the -scenario flag.
var scenarioFilter string

type scenario struct {
	name string
	keys int
	open bool
}

var scenarios = []scenario{
	{"one hot key, allowed", 1, true},
	{"10,000 keys, allowed", 10_000, true},
	{"one exhausted key, refused", 1, false},
}

func decisions(rdb *redis.Client, addr string, d time.Duration) {
	for _, sc := range scenarios {
		if !strings.Contains(sc.name, scenarioFilter) {
			continue
		}
		keys := make([]string, sc.keys)
		for i := range keys {
			keys[i] = "bench-" + strconv.Itoa(i) + ".example.com"
		}
		type row struct {
			name string
			r    result
			err  error
		}
		var rows []row
		var ours float64
		for _, c := range contenders {
			_ = rdb.FlushAll(context.Background()).Err()
			e := &env{addr: addr, prefix: "b" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"}
			decide, closeIt, err := c.build(e, sc.open)
			if err != nil {
				rows = append(rows, row{name: c.name, err: err})
				continue
			}
			if !sc.open {
				_, _ = decide(context.Background(), keys[0]) // spend the one admission
			}
			r := measure(decide, keys, goroutines, d)
			closeIt()
			if c.name == "smartratelimit" {
				ours = r.perSecond()
			}
			rows = append(rows, row{name: c.name, r: r})
		}
		fmt.Printf("## Decisions: %s (%d goroutines)\n\n", sc.name, goroutines)
		fmt.Println("| limiter | decisions/s | p50 | p99 | allocs/decision | smartratelimit ÷ this |")
		fmt.Println("|---|---:|---:|---:|---:|---:|")
		for _, rw := range rows {
			if rw.err != nil {
				fmt.Printf("| %s | setup failed: %v | | | | |\n", rw.name, rw.err)
				continue
			}
			r := rw.r
			note := ""
			if r.errs > 0 {
				note += fmt.Sprintf(" (%d errors: %v)", r.errs, r.firstErr)
			}
			if want := r.ops - r.errs; sc.open && r.allowed != want {
				note += fmt.Sprintf(" (only %d of %d allowed)", r.allowed, r.ops)
			} else if !sc.open && r.allowed > 0 {
				note += fmt.Sprintf(" (%d of %d allowed)", r.allowed, r.ops)
			}
			ratio := "—"
			if rw.name != "smartratelimit" && r.perSecond() > 0 && ours > 0 {
				ratio = fmt.Sprintf("%.2f×", ours/r.perSecond())
			}
			fmt.Printf("| %s | %.0f%s | %s | %s | %.1f | %s |\n", rw.name, r.perSecond(), note, short(r.p50), short(r.p99), r.allocsPerOp, ratio)
		}
		fmt.Println()
	}
}

// short prints a latency, "<1µs" below the histogram's resolution.
func short(d time.Duration) string {
	if d < time.Microsecond {
		return "<1µs"
	}
	return d.String()
}
