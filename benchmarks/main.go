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
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	dur := flag.Duration("d", 3*time.Second, "measuring time per contender and scenario")
	roundsFlag := flag.Int("rounds", 3, "split each decision measurement into this many rounds, the contenders in rotation, so that the machine's drift reaches all of them alike")
	addr := flag.String("redis", os.Getenv("REDIS_ADDR"), "Redis address; default: start redis-server on a free port")
	only := flag.String("only", "", "run only the sections whose name contains this (decisions, transport, memory, fleet)")
	who := flag.String("contender", "", "measure only the limiters these comma-separated names pick, in that order: each picks the limiter of that name, or those whose name contains it")
	scenarioFlag := flag.String("scenario", "", "run only the decision scenarios whose name contains this")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the run to this file")
	flag.Parse()
	if *memProfile != "" {
		defer func() {
			f, err := os.Create(*memProfile)
			if err != nil {
				fmt.Fprintln(os.Stderr, "benchmarks:", err)
				return
			}
			defer f.Close()
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
		}()
	}
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
	rounds = max(*roundsFlag, 1)
	if *who != "" {
		contenders = pick(contenders, strings.Split(*who, ","))
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
	fmt.Printf("# smartratelimit benchmarks\n\n%s, %s/%s, GOMAXPROCS=%d, %d CPUs; Redis %s on loopback (%s), sharing the CPUs with the benchmark. %v per measurement (decisions: in %d rounds, the contenders in rotation).\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), version, *addr, *dur, rounds)

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

// rounds is how many rounds a decision measurement is split into (-rounds).
var rounds = 3

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
			cpu  redisCPU
			err  error
		}
		rows := make([]row, len(contenders))
		for round := 0; round < rounds; round++ {
			for i, c := range contenders {
				rw := &rows[i]
				rw.name = c.name
				if rw.err != nil {
					continue
				}
				_ = rdb.FlushAll(context.Background()).Err()
				e := &env{addr: addr, prefix: "b" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"}
				decide, closeIt, err := c.build(e, sc.open)
				if err != nil {
					rw.err = err
					continue
				}
				if !sc.open {
					_, _ = decide(context.Background(), keys[0]) // spend the one admission
				}
				var cpu redisCPU
				r := measureAround(decide, keys, goroutines, d/time.Duration(rounds), func() func(int64) {
					if c.local {
						return nil
					}
					return cpu.start(rdb)
				})
				closeIt()
				rw.r.add(r)
				rw.cpu.add(cpu)
			}
		}
		var ours float64
		for _, rw := range rows {
			if rw.name == "smartratelimit" && rw.err == nil {
				ours = rw.r.perSecond()
			}
		}
		fmt.Printf("## Decisions: %s (%d goroutines)\n\n", sc.name, goroutines)
		fmt.Println("| limiter | decisions/s | p50 | p99 | allocs/decision | Redis CPU/decision | commands (µs per call) | smartratelimit ÷ this |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---|---:|")
		for _, rw := range rows {
			if rw.err != nil {
				fmt.Printf("| %s | setup failed: %v | | | | | | |\n", rw.name, rw.err)
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
			fmt.Printf("| %s | %.0f%s | %s | %s | %.1f | %s | %s | %s |\n", rw.name, r.perSecond(), note, short(r.p50), short(r.p99), r.allocsPerOp,
				rw.cpu.perDecision(), rw.cpu.commands(), ratio)
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

// redisCPU is what Redis spent over one measurement: its process's CPU
// (INFO cpu, user and system, so parsing and networking count) and each
// command's calls and time (INFO commandstats, reset at the start).
type redisCPU struct {
	ops      int64
	cpu      time.Duration
	calls    map[string]int64
	usec     map[string]int64
	measured bool
}

// start resets Redis's command statistics and notes its CPU; the function
// it returns reads both again after ops decisions.
func (c *redisCPU) start(rdb *redis.Client) func(int64) {
	ctx := context.Background()
	if rdb.ConfigResetStat(ctx).Err() != nil {
		return nil
	}
	before, err := usedCPU(rdb)
	if err != nil {
		return nil
	}
	return func(ops int64) {
		after, err := usedCPU(rdb)
		if err != nil {
			return
		}
		stats, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			return
		}
		c.ops, c.cpu, c.measured = ops, after-before, true
		c.calls, c.usec = map[string]int64{}, map[string]int64{}
		for _, line := range strings.Split(stats, "\n") {
			// cmdstat_evalsha:calls=123,usec=456,usec_per_call=3.71,...
			name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
			name, found := strings.CutPrefix(name, "cmdstat_")
			if !ok || !found || strings.HasPrefix(name, "config") || name == "info" {
				continue
			}
			for _, f := range strings.Split(fields, ",") {
				k, v, _ := strings.Cut(f, "=")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "calls":
					c.calls[name] = n
				case "usec":
					c.usec[name] = n
				}
			}
		}
	}
}

// add merges another round's figures.
func (c *redisCPU) add(o redisCPU) {
	if !o.measured {
		return
	}
	if !c.measured {
		*c = o
		return
	}
	c.ops, c.cpu = c.ops+o.ops, c.cpu+o.cpu
	for n, v := range o.calls {
		c.calls[n] += v
	}
	for n, v := range o.usec {
		c.usec[n] += v
	}
}

// perDecision is Redis's process CPU per decision.
func (c redisCPU) perDecision() string {
	if !c.measured || c.ops == 0 {
		return ""
	}
	return fmt.Sprintf("%.1fµs", float64(c.cpu.Microseconds())/float64(c.ops))
}

// commands lists the commands Redis ran, by time, with the time of each.
func (c redisCPU) commands() string {
	if !c.measured || c.ops == 0 {
		return ""
	}
	names := make([]string, 0, len(c.usec))
	for n := range c.usec {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return c.usec[names[i]] > c.usec[names[j]] })
	var parts []string
	for _, n := range names {
		if c.calls[n] == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f/decision (%.1f)", n, float64(c.calls[n])/float64(c.ops), float64(c.usec[n])/float64(c.calls[n])))
	}
	return strings.Join(parts, ", ")
}

// usedCPU is Redis's process CPU so far, user and system.
func usedCPU(rdb *redis.Client) (time.Duration, error) {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

// pick keeps the contenders that names pick, in the order of names (the
// rotation's order): each name picks the contender of that exact name, or
// else those whose name contains it, in the table's order.
func pick(all []contender, names []string) []contender {
	var kept []contender
	for _, name := range names {
		exact := slices.ContainsFunc(all, func(o contender) bool { return o.name == name })
		for _, c := range all {
			taken := slices.ContainsFunc(kept, func(o contender) bool { return o.name == c.name })
			if !taken && (exact && c.name == name || !exact && strings.Contains(c.name, name)) {
				kept = append(kept, c)
			}
		}
	}
	return kept
}
