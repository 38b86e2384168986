// Command smartratelimit demonstrates and operates the limiter.
//
//	smartratelimit demo [flags]   a simulated fleet against a rate-limited API
//
// Run "smartratelimit help" for the commands and their flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: smartratelimit <command> [flags]

commands:
  demo     run a simulated fleet against a local rate-limited API (embedded Redis by default)
  help     show this help

Run "smartratelimit <command> -h" for a command's flags.
`

// run executes one command and returns the process exit code: 0 success,
// 1 failure, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "smartratelimit: unknown command %q\n\n%s", args[0], usage)
	return 2
}
