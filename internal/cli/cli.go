// Package cli is the smartratelimit command: demo, status, keys, reset.
// cmd/smartratelimit runs it with the stores of the root module (memory,
// Redis); sqlitelimit/cmd/smartratelimit runs the same command with the
// SQLite store linked in.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/smartratelimit/smartratelimit/internal/redact"
)

// Main runs the command line args (without the program's name) and
// returns the process exit code: 0 success, 1 failure, 2 bad usage.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// go-redis logs each failed dial to os.Stderr itself, past the
	// command's output (and its redaction), once per retry. The command
	// reports every failure in one line of its own instead.
	redis.SetLogger(quiet{})
	return run(ctx, args, stdin, stdout, stderr)
}

const usage = `usage: smartratelimit <command> [flags]

commands:
  demo           run a simulated fleet against a local rate-limited API (embedded Redis by default)
  status KEY...  print what every process sees for each key (--watch to refresh, --json)
  keys           list the keys in the store (in Redis, under the prefix, with SCAN, never KEYS)
  reset KEY      forget a key's pacing, learned quota and block (asks first unless --yes)
  help [COMMAND] show this help, or a command's

Run "smartratelimit <command> -h" or "smartratelimit help <command>" for a
command's flags; flags go anywhere on the line.

` + urlHelp + "\n"

// commands builds each command's flags, for "help <command>".
var commands = map[string]func() *command{
	"demo":   func() *command { return newDemo().command },
	"status": func() *command { return newStatus().command },
	"keys":   func() *command { return newKeys().command },
	"reset":  func() *command { return newReset().command },
}

// run executes one command and returns the process exit code: 0 success,
// 1 failure, 2 bad usage.
//
// Every message already redacts the URLs it names (package redact); on top
// of that, the secrets of every URL the command was given (REDIS_URL and
// any argument) are scrubbed from all it writes, so a secret echoed where
// no URL rule can see it, by us or by a library, still never shows.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	secrets := redact.Secrets(os.Getenv("REDIS_URL"))
	for _, a := range args {
		secrets = append(secrets, redact.Secrets(a)...)
	}
	return dispatch(ctx, args, stdin, redact.NewWriter(stdout, secrets...), redact.NewWriter(stderr, secrets...))
}

// dispatch runs the command args names.
func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "status":
		return status(ctx, args[1:], stdout, stderr)
	case "keys":
		return keys(ctx, args[1:], stdout, stderr)
	case "reset":
		return reset(ctx, args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				c().usage(stdout)
				return 0
			}
			fmt.Fprintf(stderr, "smartratelimit: no help for %q, not a command\n\n%s", args[1], usage)
			return 2
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "smartratelimit: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// quiet is a go-redis logger that drops everything.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
