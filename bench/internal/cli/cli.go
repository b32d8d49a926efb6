// Package cli holds the bench command's subcommands: flag parsing, wiring of the measuring
// packages, and output. cmd/bench only dispatches to it, so the smoke subcommand and tests can
// run the same code in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrUsage is returned for bad command-line arguments; the command prints usage and exits 2.
var ErrUsage = errors.New("usage")

// Env is what a subcommand runs with.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"pollers", "poller backend scaling (libevent bench.c shape): time per dispatch as N grows", runPollers},
		{"http", "closed-loop HTTP/1.1 load against our stack and peers, pinned, interleaved rounds", runHTTP},
		{"idle", "memory per idle keep-alive connection for each server", runIdle},
		{"ws", "WebSocket servers side by side: echo CPU/message, broadcast, idle memory", runWS},
		{"proxy", "reverse proxies (reactord, nginx proxy_pass, httputil) to one pinned upstream; -slow: memory under slow clients", runProxy},
		{"serve", "run one benchmark server in the foreground (for wrk, h2load, curl)", runServe},
		{"smoke", "run every subcommand for a few seconds with tiny sizes (CI)", runSmoke},
	}
}

// Main runs the bench command with args (without the program name) and returns the exit code.
func Main(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:])
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, ErrUsage):
				fmt.Fprintf(env.Stderr, "bench %s: %v\n", c.name, err)
				return 2
			default:
				fmt.Fprintf(env.Stderr, "bench %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(env.Stderr, "bench: unknown subcommand %q\n\n", args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "bench — reactord's benchmark harness (loopback only)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: bench <subcommand> [flags]    (bench <subcommand> -h for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Method and latest numbers: docs/BENCHMARKS.md.")
}

// newFlags makes a FlagSet whose -h prints the description then the flags.
func newFlags(env Env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: bench %s %s\n\n%s\n\nflags:\n", name, synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return nil
}

// intList parses "1,16" into []int, every value ≥ lo.
func intList(s string, lo int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < lo {
			return nil, fmt.Errorf("%w: %q is not an integer ≥ %d", ErrUsage, f, lo)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty list", ErrUsage)
	}
	sort.Ints(out)
	return out, nil
}

func stringList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// newLogger logs to stderr: warnings by default, everything with verbose.
func newLogger(w io.Writer, verbose bool) *zap.Logger {
	level := zapcore.WarnLevel
	if verbose {
		level = zapcore.DebugLevel
	}
	enc := zap.NewDevelopmentEncoderConfig()
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), level))
}

func writeFileOrStdout(env Env, file string, write func(io.Writer) error) error {
	if file == "" {
		return nil
	}
	if file == "-" {
		return write(env.Stdout)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
