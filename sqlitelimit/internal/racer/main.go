// Command racer is the helper the multi-process tests and benchmarks of
// package sqlitelimit build and run as separate OS processes against one
// store. It is not part of the library.
//
//	racer race    -url U -key K -rate 20 -per 1h [-pause 1ms]   admit until refused, one "admit" line each
//	racer observe -url U -key K -limit 100 -remaining 3 -reset 1h
//	racer hold    -path P                          take the write lock, change rows, never commit
//	racer bench   -url U -keys N -for 2s           decisions for a while; prints their count
//
// race and bench wait for a line on standard input before they start, so
// that every process starts at once.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	_ "github.com/smartratelimit/smartratelimit/sqlitelimit"
	"github.com/smartratelimit/smartratelimit/storage"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: racer race|observe|hold|bench [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	url := fs.String("url", "", "store URL")
	path := fs.String("path", "", "database file (hold)")
	key := fs.String("key", "k", "key")
	rate := fs.Int("rate", 20, "limit: events per -per (0: no limit)")
	per := fs.Duration("per", time.Hour, "limit period")
	limit := fs.Int("limit", 100, "observed quota limit")
	remaining := fs.Int("remaining", 3, "observed quota remaining")
	reset := fs.Duration("reset", time.Hour, "observed quota reset")
	keys := fs.Int("keys", 1, "bench: keys to spread over")
	dur := fs.Duration("for", 2*time.Second, "bench: how long")
	pause := fs.Duration("pause", 0, "race: pause between attempts")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "race":
		err = race(*url, *key, *rate, *per, *pause)
	case "observe":
		err = observe(*url, *key, *limit, *remaining, *reset)
	case "hold":
		err = hold(*path)
	case "bench":
		err = bench(*url, *keys, *dur)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "racer:", err)
		os.Exit(1)
	}
}

func start() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n') }

func limits(rate int, per time.Duration) []srl.Limit {
	if rate == 0 {
		return nil
	}
	return []srl.Limit{srl.Every(rate, per).WithBurst(rate)}
}

// race admits until the first refusal. Each admission is written to
// standard output as soon as Acquire returns (os.Stdout is unbuffered), so
// a process killed at any instant has printed all but at most the one
// admission in flight.
func race(url, key string, rate int, per, pause time.Duration) error {
	b, c, err := storage.Open(url)
	if err != nil {
		return err
	}
	defer c.Close()
	ls := limits(rate, per)
	start()
	for {
		d, err := b.Acquire(context.Background(), srl.Request{Key: key, N: 1, Limits: ls})
		if err != nil {
			return err
		}
		if !d.Allowed {
			fmt.Printf("refused %v %v\n", d.Cause, d.RetryAfter)
			return nil
		}
		if _, err := os.Stdout.WriteString("admit\n"); err != nil {
			return err
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

func observe(url, key string, limit, remaining int, reset time.Duration) error {
	b, c, err := storage.Open(url)
	if err != nil {
		return err
	}
	defer c.Close()
	return b.Observe(context.Background(), key, srl.Observation{Limit: limit, Remaining: remaining, Reset: reset, Succeeded: true})
}

// hold takes the write lock as a store's decision does, deletes every row
// and corrupts a state inside the open transaction, says so, and waits to
// be killed: what it wrote must never be seen.
func hold(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		return err
	}
	ctx := context.Background()
	for _, q := range []string{
		"BEGIN IMMEDIATE",
		"UPDATE srl_keys SET state = 'garbage'",
		"DELETE FROM srl_keys",
		"INSERT INTO srl_keys (key, state, expire_at) VALUES ('ghost', '{}', 9000000000000000)",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	fmt.Println("holding")
	time.Sleep(time.Hour)
	return nil
}

// bench makes decisions for dur over keys keys under a limit that never
// refuses, and prints how many it made.
func bench(url string, keys int, dur time.Duration) error {
	b, c, err := storage.Open(url)
	if err != nil {
		return err
	}
	defer c.Close()
	names := make([]string, keys)
	for i := range names {
		names[i] = "bench-" + strconv.Itoa(i)
	}
	ls := []srl.Limit{srl.PerSecond(1_000_000).WithBurst(1_000_000)}
	start()
	n := 0
	for end := time.Now().Add(dur); time.Now().Before(end); n++ {
		if _, err := b.Acquire(context.Background(), srl.Request{Key: names[n%keys], N: 1, Limits: ls}); err != nil {
			return err
		}
	}
	fmt.Println(n)
	return nil
}
