package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/smartratelimit/smartratelimit/internal/redact"
)

// command is one subcommand: its flags and what its usage says.
type command struct {
	name     string // "status"
	synopsis string // "status [flags] KEY..."
	about    string // what it does, and what its arguments are
	fs       *flag.FlagSet
}

func newCommand(name, synopsis, about string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The command prints flag errors and usage itself, to the stream the
	// case calls for (usage asked for goes to stdout), and redacted.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, synopsis: synopsis, about: about, fs: fs}
}

// usage prints the command's usage and flags to w.
func (c *command) usage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: smartratelimit %s\n\n%s\n\nFlags go anywhere on the line; -- ends them.\n\nflags:\n", c.synopsis, c.about)
	c.fs.SetOutput(&b)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
	fmt.Fprint(w, b.String()) // one write, so redact.Writer sees it whole
}

// errHelp reports -h or --help: the usage was asked for.
var errHelp = errors.New("help requested")

// parse reads the command's flags wherever they sit on the line and
// returns the other arguments in order. When the command must stop here it
// returns done with the exit code: 0 after printing the usage asked for
// with -h or --help (to stdout), 2 after a flag error (to stderr).
func (c *command) parse(args []string, stdout, stderr io.Writer) (positional []string, code int, done bool) {
	flags, positional, err := splitArgs(c.fs, args)
	if err == nil {
		err = c.fs.Parse(flags)
	}
	switch {
	case errors.Is(err, errHelp), errors.Is(err, flag.ErrHelp):
		c.usage(stdout)
		return nil, 0, true
	case err != nil:
		// flag's errors quote the offending value, which may be a URL.
		fmt.Fprintf(stderr, "smartratelimit %s: %v\n\n", c.name, redact.Error(err))
		c.usage(stderr)
		return nil, 2, true
	}
	return positional, 0, false
}

// badUsage prints the usage to stderr and returns the exit code of bad
// usage.
func (c *command) badUsage(stderr io.Writer, why string) int {
	fmt.Fprintf(stderr, "smartratelimit %s: %s\n\n", c.name, why)
	c.usage(stderr)
	return 2
}

// splitArgs separates flags (with their values) from the other arguments,
// so that flags may follow the keys as people type them: the flag package
// alone stops at the first argument that is not a flag and would take
// "--json" in "status KEY --json" for a key. "--" ends the flags; "-" and
// everything after "--" are arguments. A flag the set does not know is
// passed on for Parse to report, except -h and --help, which return
// errHelp wherever they sit.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string, err error) {
	help := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if f == nil && (name == "h" || name == "help") {
			help = true
			continue
		}
		flags = append(flags, a)
		if f != nil && !hasValue && !isBool(f) && i+1 < len(args) {
			// The next argument is this flag's value, even if it looks
			// like a flag or is "--" (as the flag package reads it).
			i++
			flags = append(flags, args[i])
		}
	}
	if help {
		return nil, nil, errHelp
	}
	return flags, positional, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// set reports whether the flag name was given on the command line.
func (c *command) set(name string) bool {
	given := false
	c.fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
