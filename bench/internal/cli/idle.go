package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/reactord/reactord/bench/internal/chart"
	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/cpupin"
	"github.com/reactord/reactord/bench/internal/idle"
	"github.com/reactord/reactord/bench/internal/progress"
	"github.com/reactord/reactord/bench/internal/servers"
	"github.com/reactord/reactord/bench/internal/tlsconf"
)

func runIdle(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "idle", "[-servers LIST] [-pollers LIST] [-n N] [-json FILE] [-chart FILE]", `
Memory per idle keep-alive connection. For each server (a child process, as in "http"): one warm
connection, then N more connections that each complete one request and stay open, idle. Reports
the growth of the server's VmRSS divided by N and, for Go servers, the growth of heap-in-use plus
stack-in-use after a GC divided by N. RLIMIT_NOFILE is raised to fit N (here and in the child).

`+serversHelp())
	var avail []string
	for _, sv := range servers.All() {
		if sv.Available() == nil {
			avail = append(avail, sv.Name)
		}
	}
	serverList := fs.String("servers", strings.Join(avail, ","), "comma-separated server `names`")
	pollerList := fs.String("pollers", "epoll", "poller `backends` for our stack")
	n := fs.Int("n", 10000, "idle connections N")
	gmp := fs.Int("gomaxprocs", 1, "GOMAXPROCS of the server process (0: inherit)")
	jsonFile := fs.String("json", "", "write results as JSON to `file` (- for stdout)")
	chartFile := fs.String("chart", "", "write a bar chart of bytes per connection to `file`")
	tlsKind := fs.String("tls", "", "HTTPS with a self-signed certificate of this `kind` (ecdsa, rsa) for every server that has TLS")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("%w: -n must be ≥ 1", ErrUsage)
	}
	limit, err := cpupin.RaiseNoFile(uint64(*n + 1024))
	if err != nil {
		return err
	}
	if limit < uint64(*n+64) {
		return fmt.Errorf("%w: RLIMIT_NOFILE is %d, too low for -n %d", ErrUsage, limit, *n)
	}
	if *tlsKind != "" && !slices.Contains(tlsconf.Kinds(), *tlsKind) {
		return fmt.Errorf("%w: -tls %q: want one of %v", ErrUsage, *tlsKind, tlsconf.Kinds())
	}
	var clientTLS *tls.Config
	if *tlsKind != "" {
		clientTLS = tlsconf.Client()
	}
	targets, err := targetsFor(env.Stderr, stringList(*serverList), stringList(*pollerList), *tlsKind != "")
	if err != nil {
		return err
	}
	bar := progress.New(time.Duration(len(targets))*2*time.Second, "idle")
	defer bar.Finish()
	var results []idle.Result
	for _, t := range targets {
		bar.Describe("idle " + t.Label)
		proc, err := child.Spawn(ctx, child.Spec{Server: t.Server, Poller: t.Poller, GOMAXPROCS: *gmp, Stderr: env.Stderr, TLS: *tlsKind})
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label, err)
		}
		stats := proc.Stats
		if t.Server == "nginx" {
			stats = nil
		}
		res, err := idle.Measure(ctx, t.Label, proc.Addr(), proc.PID(), *n, stats, clientTLS)
		stopErr := proc.Stop()
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label, err)
		}
		if stopErr != nil {
			fmt.Fprintf(env.Stderr, "%s: stop: %v\n", t.Label, stopErr)
		}
		results = append(results, res)
		bar.Step(2 * time.Second)
	}
	bar.Finish()
	over := ""
	if *tlsKind != "" {
		over = " over TLS (" + *tlsKind + " certificate)"
	}
	fmt.Fprintf(env.Stdout, "idle: %d keep-alive connections%s, each after one request\n\n", *n, over)
	fmt.Fprintln(env.Stdout, "| server | RSS before MiB | RSS after MiB | RSS bytes/conn | Go heap+stack bytes/conn | goroutines |")
	fmt.Fprintln(env.Stdout, "|---|---:|---:|---:|---:|---:|")
	for _, r := range results {
		gop, gor := "–", "–"
		if r.Goroutines > 0 {
			gop, gor = fmt.Sprintf("%.0f", r.GoPerConn), fmt.Sprint(r.Goroutines)
		}
		fmt.Fprintf(env.Stdout, "| %s | %.1f | %.1f | %.0f | %s | %s |\n", r.Label,
			float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.RSSPerConn, gop, gor)
	}
	if *tlsKind != "" {
		// What crypto/tls keeps per connection by itself: the part of a TLS server's cost
		// that no server built on crypto/tls can avoid.
		scfg, err := tlsconf.Server(*tlsKind)
		if err != nil {
			return err
		}
		per, err := idle.CryptoTLSPerConn(min(*n, 2000), scfg, clientTLS)
		if err != nil {
			return fmt.Errorf("crypto/tls alone: %w", err)
		}
		fmt.Fprintf(env.Stdout, "\ncrypto/tls alone (server tls.Conn after a handshake and one request, in-memory pipes, this process): %.0f Go heap bytes/conn\n", per)
	}
	if err := writeFileOrStdout(env, *jsonFile, func(w io.Writer) error {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(results)
	}); err != nil {
		return err
	}
	if *chartFile != "" {
		cats := make([]string, len(results))
		vals := make([]float64, len(results))
		for i, r := range results {
			cats[i], vals[i] = r.Label, r.RSSPerConn
		}
		if err := chart.Bars(*chartFile, fmt.Sprintf("RSS per idle keep-alive connection (N=%d)", *n), "bytes / connection",
			cats, []chart.Group{{Name: "RSS", Values: vals}}); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "\nchart: %s\n", *chartFile)
	}
	return nil
}
