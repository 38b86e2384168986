// Command smartratelimit is the smartratelimit command (demo, status,
// keys, reset) with the SQLite store linked in, so that its operator
// commands work on a file as on Redis:
//
//	smartratelimit keys --store sqlite:///rate_limits.db
//	smartratelimit status --store sqlite:////var/lib/app/rate_limits.db api.github.com
//	REDIS_URL=sqlite:///rate_limits.db smartratelimit reset --yes api.github.com
//
// It lives in the sqlitelimit module because the root module's command
// (cmd/smartratelimit) must not pull the SQLite driver into the root
// module's dependencies. Everything else is the same command.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/smartratelimit/smartratelimit/internal/cli"
	_ "github.com/smartratelimit/smartratelimit/sqlitelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
