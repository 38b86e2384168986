package scripts

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDifferentialRealRedis runs the differential test against a real
// redis-server, whose Lua (5.1 on C doubles, Redis's own number
// formatting) is not miniredis's: the seed inputs and the corpus in
// testdata (inputs that once failed), then the seeds mutated at a few bytes
// and grown at random (a fixed seed, so a failure repeats), each compared
// with the Go twin. It skips when redis-server is not installed; CI
// installs it.
func TestDifferentialRealRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	rdb := startRedis(t, bin)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	corpus := append(slices.Clone(fuzzSeeds), corpusInputs(t, "testdata/fuzz/FuzzDifferential")...)
	const inputs = 1500
	for i := 0; i < inputs; i++ {
		var data []byte
		if i < len(corpus) {
			data = slices.Clone(corpus[i])
		} else {
			data = slices.Clone(fuzzSeeds[i%len(fuzzSeeds)])
			for range 1 + rng.IntN(4) {
				data[rng.IntN(len(data))] = byte(rng.Uint32())
			}
			for range rng.IntN(3) * rng.IntN(24) {
				data = append(data, byte(rng.Uint32()))
			}
		}
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { differentialOn(t, rdb, data) })
		if t.Failed() {
			t.Fatalf("input %d: %x", i, data)
		}
	}
}

// corpusInputs reads the []byte inputs of a fuzz corpus directory (the
// "go test fuzz v1" files).
func corpusInputs(t *testing.T, dir string) [][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var inputs [][]byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		header, value, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		lit, ok := strings.CutPrefix(value, "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		data, err := strconv.Unquote(lit)
		if header != "go test fuzz v1" || !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a corpus file of one []byte", e.Name())
		}
		inputs = append(inputs, []byte(data))
	}
	return inputs
}

// startRedis starts bin on a free loopback port for the test's lifetime.
func startRedis(t *testing.T, bin string) *redis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { _ = rdb.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer within 10s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rdb
}
