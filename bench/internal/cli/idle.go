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
	fs := newFlags(env, "idle", "[-servers LIST] [-pollers LIST] [-n N[,N...]] [-tls KIND] [-json FILE] [-chart FILE]", `
Memory per idle keep-alive connection. For each server (a child process, as in "http"): one warm
connection, then connections that each complete one request and stay open, idle, up to each N of
-n in turn (they accumulate). Reports, at each N, the growth of the server's VmRSS divided by N
and, for Go servers, the growth of heap-in-use plus stack-in-use after a GC divided by N; with
several N, also the slope of a least-squares line through the steps (bytes per connection),
which leaves fixed costs out (the Go runtime's 4 MiB minimum heap, say).

Connections come from loopback source addresses 127.0.0.1, .2, ... (-per-source each, a fresh set
per server), so N may exceed one address's ephemeral ports; they are closed with a reset.
RLIMIT_NOFILE is raised to fit N, here and in the child (as root the hard limit too).
-gogc and -memlimit set GOGC and GOMEMLIMIT in the child, to see what GC tuning does to RSS.

`+serversHelp())
	var avail []string
	for _, sv := range servers.All() {
		if sv.Available() == nil {
			avail = append(avail, sv.Name)
		}
	}
	serverList := fs.String("servers", strings.Join(avail, ","), "comma-separated server `names`")
	pollerList := fs.String("pollers", "epoll", "poller `backends` for our stack")
	nList := fs.String("n", "10000", "idle connections: one `N` or an ascending list of steps")
	perSource := fs.Int("per-source", idle.DefaultPerSource, "connections per loopback source `address`")
	gmp := fs.Int("gomaxprocs", 1, "GOMAXPROCS of the server process (0: inherit)")
	gogc := fs.String("gogc", "", "GOGC for the server process (empty: inherit)")
	memlimit := fs.String("memlimit", "", "GOMEMLIMIT for the server process, e.g. 64MiB (empty: inherit)")
	jsonFile := fs.String("json", "", "write results as JSON to `file` (- for stdout)")
	chartFile := fs.String("chart", "", "write a chart to `file`: bars of bytes per connection (one N) or RSS growth against N (several)")
	tlsKind := fs.String("tls", "", "HTTPS with a self-signed certificate of this `kind` (ecdsa, rsa) for every server that has TLS")
	if err := parse(fs, args); err != nil {
		return err
	}
	steps, err := intList(*nList, 1)
	if err != nil {
		return err
	}
	slices.Sort(steps)
	steps = slices.Compact(steps)
	if len(steps) == 0 {
		return fmt.Errorf("%w: -n must name at least one N ≥ 1", ErrUsage)
	}
	if *perSource < 1 || *perSource > 28000 {
		return fmt.Errorf("%w: -per-source must be 1..28000", ErrUsage)
	}
	limit, err := cpupin.RaiseNoFile(uint64(steps[len(steps)-1] + 1024))
	if err != nil {
		return err
	}
	// The server and this process each hold one descriptor per connection. Steps that do not
	// fit under the limit (raising the hard limit needs CAP_SYS_RESOURCE) are dropped, said
	// on stderr and in the report.
	var dropped []int
	for len(steps) > 0 && uint64(steps[len(steps)-1]+256) > limit {
		dropped = append([]int{steps[len(steps)-1]}, dropped...)
		steps = steps[:len(steps)-1]
	}
	if len(steps) == 0 {
		return fmt.Errorf("%w: RLIMIT_NOFILE is %d, too low for -n %s (raising the hard limit needs CAP_SYS_RESOURCE)", ErrUsage, limit, joinInts(dropped))
	}
	if len(dropped) > 0 {
		fmt.Fprintf(env.Stderr, "idle: RLIMIT_NOFILE is %d (hard limit; raising it needs CAP_SYS_RESOURCE): N = %s dropped\n", limit, joinInts(dropped))
	}
	n := steps[len(steps)-1]
	var childEnv []string
	if *gogc != "" {
		childEnv = append(childEnv, "GOGC="+*gogc)
	}
	if *memlimit != "" {
		childEnv = append(childEnv, "GOMEMLIMIT="+*memlimit)
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
	perTarget := 2*time.Second + time.Duration(n)*200*time.Microsecond
	bar := progress.New(time.Duration(len(targets))*perTarget, "idle")
	defer bar.Finish()
	var results []idle.Result
	for _, t := range targets {
		bar.Describe("idle " + t.Label)
		proc, err := child.Spawn(ctx, child.Spec{Server: t.Server, Poller: t.Poller, GOMAXPROCS: *gmp, Env: childEnv, Stderr: env.Stderr, TLS: *tlsKind})
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label, err)
		}
		stats := proc.Stats
		if !goInChild(t.Server) {
			stats = nil
		}
		res, err := idle.MeasureSteps(ctx, idle.Options{Label: t.Label, Addr: proc.Addr(), PID: proc.PID(),
			Steps: steps, Stats: stats, PerSource: *perSource, TLS: clientTLS})
		stopErr := proc.Stop()
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label, err)
		}
		if stopErr != nil {
			fmt.Fprintf(env.Stderr, "%s: stop: %v\n", t.Label, stopErr)
		}
		results = append(results, res)
		bar.Step(perTarget)
	}
	bar.Finish()
	printIdle(env.Stdout, results, steps, childEnv, *tlsKind)
	if len(dropped) > 0 {
		fmt.Fprintf(env.Stdout, "\nN = %s not run: RLIMIT_NOFILE is %d here.\n", joinInts(dropped), limit)
	}
	if *tlsKind != "" {
		// What crypto/tls keeps per connection by itself: the part of a TLS server's cost
		// that no server built on crypto/tls can avoid.
		scfg, err := tlsconf.Server(*tlsKind)
		if err != nil {
			return err
		}
		per, err := idle.CryptoTLSPerConn(min(n, 2000), scfg, clientTLS)
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
		if err := idleChart(*chartFile, results, steps); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "\nchart: %s\n", *chartFile)
	}
	return nil
}

// goInChild reports whether the server's memory is the Go program in the child, whose runtime
// figures the child can report: not nginx, not the daemon (its own process).
func goInChild(server string) bool { return server != "nginx" && server != "reactord-daemon" }

func printIdle(w io.Writer, results []idle.Result, steps []int, childEnv []string, tlsKind string) {
	gcNote := ""
	if len(childEnv) > 0 {
		gcNote = " (" + strings.Join(childEnv, " ") + ")"
	}
	over := ""
	if tlsKind != "" {
		over = " over TLS (" + tlsKind + " certificate)"
	}
	fmt.Fprintf(w, "idle: keep-alive connections%s, each after one request, N = %s%s\n\n", over, joinInts(steps), gcNote)
	fmt.Fprintln(w, "| server | N | RSS MiB | RSS bytes/conn | Go heap+stack bytes/conn | goroutines |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, r := range results {
		base := r.Points[0]
		for _, p := range r.Points[1:] {
			gop, gor := "–", "–"
			if base.GoHeapStack != 0 {
				gop = fmt.Sprintf("%.0f", (float64(p.GoHeapStack)-float64(base.GoHeapStack))/float64(p.Conns))
				if p.Conns == r.Conns {
					gor = fmt.Sprint(r.Goroutines)
				}
			}
			fmt.Fprintf(w, "| %s | %d | %.1f | %.0f | %s | %s |\n", r.Label, p.Conns,
				float64(p.RSS)/(1<<20), float64(p.RSS-base.RSS)/float64(p.Conns), gop, gor)
		}
	}
	if len(steps) < 2 {
		return
	}
	fmt.Fprintf(w, "\nSlope of a least-squares line through the %d steps (bytes per connection):\n\n", len(steps))
	fmt.Fprintln(w, "| server | RSS slope | Go heap+stack slope | RSS MiB at 0 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, r := range results {
		gos := "–"
		if r.GoSlope != 0 {
			gos = fmt.Sprintf("%.0f", r.GoSlope)
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %.1f |\n", r.Label, r.RSSSlope, gos, float64(r.Points[0].RSS)/(1<<20))
	}
}

func idleChart(file string, results []idle.Result, steps []int) error {
	if len(steps) == 1 {
		cats := make([]string, len(results))
		vals := make([]float64, len(results))
		for i, r := range results {
			cats[i], vals[i] = r.Label, r.RSSPerConn
		}
		return chart.Bars(file, fmt.Sprintf("RSS per idle keep-alive connection (N=%d)", steps[0]), "bytes / connection",
			cats, []chart.Group{{Name: "RSS", Values: vals}})
	}
	var lines []chart.Line
	for _, r := range results {
		l := chart.Line{Name: fmt.Sprintf("%s (%.0f B/conn)", r.Label, r.RSSSlope)}
		base := r.Points[0]
		for _, p := range r.Points {
			l.Points = append(l.Points, chart.Point{X: float64(p.Conns), Y: float64(p.RSS-base.RSS) / (1 << 20)})
		}
		lines = append(lines, l)
	}
	return chart.Lines(file, "RSS growth with idle keep-alive connections (slope in the legend)", "idle connections",
		"RSS growth, MiB", false, false, lines)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
