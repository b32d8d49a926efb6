package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/reactord/reactord/bench/internal/chart"
	"github.com/reactord/reactord/bench/internal/cpupin"
	"github.com/reactord/reactord/bench/internal/httpbench"
	"github.com/reactord/reactord/bench/internal/progress"
	"github.com/reactord/reactord/bench/internal/report"
	"github.com/reactord/reactord/bench/internal/servers"
	"github.com/reactord/reactord/bench/internal/tlsconf"
)

// targetsFor expands server names into targets: one per poller backend for our stack.
// Unavailable servers are skipped with a note on w unless named explicitly and strict.
func targetsFor(w io.Writer, names, pollers []string, tls bool) ([]httpbench.Target, error) {
	var out []httpbench.Target
	for _, n := range names {
		sv, err := servers.Lookup(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		if err := sv.Available(); err != nil {
			fmt.Fprintf(w, "skipping %s: %v\n", n, err)
			continue
		}
		if tls && !sv.TLS {
			fmt.Fprintf(w, "skipping %s: no TLS support\n", n)
			continue
		}
		if !tls && sv.TLSOnly {
			fmt.Fprintf(w, "skipping %s: it differs from another server only with -tls\n", n)
			continue
		}
		if sv.UsesPoller && len(pollers) > 0 {
			for _, p := range pollers {
				out = append(out, httpbench.Target{Label: n + "/" + p, Server: n, Poller: p})
			}
			continue
		}
		out = append(out, httpbench.Target{Label: n, Server: n})
	}
	return out, nil
}

func defaultCPUs() (server, client int) {
	if runtime.NumCPU() >= 2 {
		return 0, 1
	}
	return -1, -1
}

func runHTTP(ctx context.Context, env Env, args []string) error {
	sc, cc := defaultCPUs()
	fs := newFlags(env, "http", "[-servers LIST] [-pollers LIST] [-c C] [-p LIST] [-warmup D] [-d D] [-rounds R] [-json FILE] [-chart FILE] [-strace] | -target ADDR [-pid PID]", `
Closed-loop HTTP/1.1 load on raw TCP: C connections, each writing P pipelined GET requests in one
write and reading all P responses (framed by Content-Length or chunked) before the next batch.
Latency is recorded in an HDR histogram; errors are counted by kind (bad status, invalid or short
response, connection error, wrong body).

Without -target, each server runs as a child process ("bench serve -control"), pinned to
-server-cpu with GOMAXPROCS=-gomaxprocs, while this process is pinned to -client-cpu. Servers are
interleaved inside each round (order rotated per round) and every server is started fresh for
every run. Per server and depth it reports the medians over rounds of: requests/s, server CPU µs
per request (utime+stime from /proc/PID/stat over the measured window / requests), server RSS
(VmRSS), read+write syscalls per request (/proc/PID/io syscr+syscw), p50/p99/p99.9, errors; and
the median of per-round ratios against -baseline.

Syscalls per request, all kinds: -syscalls adds one run per server and depth that counts every
call with the kernel's syscall tracepoints (perf_event_open; the server runs at full speed, so a
design that batches calls, io_uring, batches as it really does). -strace adds one short run per
server traced with "strace -c -f -p PID" (tracing slows the server, so that run only counts
calls, and it flatters batching designs). By hand: "bench serve -server NAME -addr
127.0.0.1:8080 &", "perf stat -e raw_syscalls:sys_enter -p $!" (or "strace -c -f -p $!"), load
it, stop the counter and divide its total by the requests sent.

`+serversHelp())
	var avail []string
	for _, sv := range servers.All() {
		if sv.Available() == nil {
			avail = append(avail, sv.Name)
		}
	}
	serverList := fs.String("servers", strings.Join(avail, ","), "comma-separated server `names`")
	pollerList := fs.String("pollers", "epoll", "comma-separated I/O `backends` for our stack (epoll, uring = the io_uring completion mode, uring-poll, poll, select)")
	target := fs.String("target", "", "load an already running server at `addr` instead of starting servers")
	pid := fs.Int("pid", 0, "with -target: the server's `pid`, for the CPU and memory columns")
	conns := fs.Int("c", 64, "connections C")
	pipes := fs.String("p", "1,16", "comma-separated pipelining `depths` P")
	warmup := fs.Duration("warmup", time.Second, "warm-up before each measured window")
	dur := fs.Duration("d", 5*time.Second, "measured window per run")
	rounds := fs.Int("rounds", 3, "rounds R (servers interleaved within each)")
	serverCPU := fs.Int("server-cpu", sc, "pin servers to `cpu` (-1: no pinning)")
	clientCPU := fs.Int("client-cpu", cc, "pin the load generator to `cpu` (-1: no pinning)")
	gmp := fs.Int("gomaxprocs", 1, "GOMAXPROCS of the server process (0: inherit)")
	loops := fs.Int("loops", 1, "event loops / worker threads per server")
	baseline := fs.String("baseline", "", "comma-separated server `labels` to compare with: the table's ratio columns use the first; with more, a ratio table follows (default: floor if measured, else the first server)")
	jsonFile := fs.String("json", "", "write every run and the summary as JSON to `file` (- for stdout)")
	chartFile := fs.String("chart", "", "write a bar chart of server CPU µs/request to `file` (.png/.svg)")
	strace := fs.Bool("strace", false, "also count all syscalls per request with strace -c -f (separate short runs)")
	countCalls := fs.Bool("syscalls", false, "also count syscalls per request with the kernel's syscall tracepoints, untraced (one extra run per server and depth; needs root or perf_event_paranoid <= 1)")
	quiet := fs.Bool("q", false, "no per-run lines on stderr")
	tlsKind := fs.String("tls", "", "HTTPS with a self-signed certificate of this `kind` (ecdsa: P-256, rsa: 2048 bits) for every server that has TLS (full handshake per connection, no resumption)")
	newConns := fs.Bool("new-conns", false, "a new connection for every batch: with -tls and -p 1, CPU per request is CPU per handshake")
	if err := parse(fs, args); err != nil {
		return err
	}
	depths, err := intList(*pipes, 1)
	if err != nil {
		return err
	}
	if *conns < 1 || *rounds < 1 || *dur <= 0 || *warmup < 0 {
		return fmt.Errorf("%w: -c, -rounds, -d must be positive", ErrUsage)
	}
	if *tlsKind != "" && !slices.Contains(tlsconf.Kinds(), *tlsKind) {
		return fmt.Errorf("%w: -tls %q: want one of %v", ErrUsage, *tlsKind, tlsconf.Kinds())
	}
	cfg := httpbench.Config{
		Addr: *target, PID: *pid, Conns: *conns, Pipelines: depths, Warmup: *warmup, Duration: *dur,
		Rounds: *rounds, ServerCPU: *serverCPU, ClientCPU: *clientCPU, GOMAXPROCS: *gmp, Loops: *loops,
		Strace: *strace, CountSyscalls: *countCalls, Stderr: env.Stderr, TLS: *tlsKind, NewConns: *newConns,
	}
	if !*quiet {
		cfg.Log = env.Stderr
	}
	if *target == "" {
		if cfg.Targets, err = targetsFor(env.Stderr, stringList(*serverList), stringList(*pollerList), *tlsKind != ""); err != nil {
			return err
		}
		if len(cfg.Targets) == 0 {
			return fmt.Errorf("%w: no server available to measure", ErrUsage)
		}
	} else {
		cfg.ServerCPU = -1
	}
	// Each connection needs a descriptor here and one in the server child, which inherits.
	if _, err := cpupin.RaiseNoFile(uint64(*conns + 1024)); err != nil {
		return err
	}
	bases := stringList(*baseline)
	labels := []string{}
	for _, t := range cfg.Targets {
		labels = append(labels, t.Label)
	}
	if *target != "" {
		labels = []string{*target}
	}
	if len(bases) == 0 {
		bases = []string{labels[0]}
		if slices.Contains(labels, "floor") {
			bases[0] = "floor"
		}
	}
	for _, b := range bases {
		if !slices.Contains(labels, b) {
			return fmt.Errorf("%w: baseline %q is not among the servers measured (%s)", ErrUsage, b, strings.Join(labels, ", "))
		}
	}
	base := bases[0]
	cfg.Bar = progress.New(cfg.PlannedDuration(), "http")
	runs, err := httpbench.Run(ctx, cfg)
	cfg.Bar.Finish()
	if err != nil {
		return err
	}
	sums := report.Summarize(runs, base)
	mode := ""
	if *tlsKind != "" {
		mode += ", TLS (" + *tlsKind + " certificate)"
	}
	if *newConns {
		mode += ", a new connection per batch"
	}
	fmt.Fprintf(env.Stdout, "http: C=%d, P=%v, warm-up %v, %v × %d rounds, server cpu %d GOMAXPROCS=%d, client cpu %d, %d CPUs, %s%s\n\n",
		*conns, depths, *warmup, *dur, *rounds, cfg.ServerCPU, *gmp, cfg.ClientCPU, runtime.NumCPU(), runtime.Version(), mode)
	if err := report.Markdown(env.Stdout, sums, base, *conns); err != nil {
		return err
	}
	if len(bases) > 1 {
		fmt.Fprintln(env.Stdout)
		if err := report.RatioTable(env.Stdout, runs, bases); err != nil {
			return err
		}
	}
	if err := writeFileOrStdout(env, *jsonFile, func(w io.Writer) error {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(struct {
			Baseline string           `json:"baseline"`
			Summary  []report.Summary `json:"summary"`
			Runs     []report.Run     `json:"runs"`
		}{base, sums, runs})
	}); err != nil {
		return err
	}
	if *chartFile != "" {
		if err := httpChart(*chartFile, sums, *conns); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "\nchart: %s\n", *chartFile)
	}
	for _, s := range sums {
		if s.Errors > 0 {
			fmt.Fprintf(env.Stderr, "warning: %s P=%d had %d errors\n", s.Label, s.Pipeline, s.Errors)
		}
	}
	return nil
}

func httpChart(file string, sums []report.Summary, conns int) error {
	var cats []string
	var depths []int
	for _, s := range sums {
		if !slices.Contains(cats, s.Label) {
			cats = append(cats, s.Label)
		}
		if !slices.Contains(depths, s.Pipeline) {
			depths = append(depths, s.Pipeline)
		}
	}
	var groups []chart.Group
	for _, d := range depths {
		g := chart.Group{Name: fmt.Sprintf("P=%d", d), Values: make([]float64, len(cats))}
		for _, s := range sums {
			if s.Pipeline == d {
				g.Values[slices.Index(cats, s.Label)] = s.CPUPerReq
			}
		}
		groups = append(groups, g)
	}
	return chart.Bars(file, fmt.Sprintf("Server CPU per request (C=%d, median of rounds; lower is better)", conns),
		"server CPU µs / request", cats, groups)
}
