// Command smartratelimit demonstrates and operates the limiter.
//
//	smartratelimit demo [flags]          a simulated fleet against a rate-limited API
//	smartratelimit status [flags] KEY... what every process sees for each key
//	smartratelimit keys [flags]          the keys in the store
//	smartratelimit reset [flags] KEY     forget a key's state
//
// Run "smartratelimit help" for the commands and the store URL forms. This
// build works on Redis; for SQLite stores (sqlite:///path.db) build
// github.com/smartratelimit/smartratelimit/sqlitelimit/cmd/smartratelimit,
// the same command with the SQLite driver linked in (a module of its own,
// so that the driver stays out of this one).
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/smartratelimit/smartratelimit/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
