package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/cpupin"
	"github.com/reactord/reactord/bench/internal/httpbench"
	"github.com/reactord/reactord/bench/internal/procstat"
	"github.com/reactord/reactord/bench/internal/progress"
	"github.com/reactord/reactord/bench/internal/report"
	"github.com/reactord/reactord/bench/internal/servers"
)

func proxiesHelp() string {
	s := "proxies:\n"
	for _, sv := range servers.Proxies() {
		avail := ""
		if err := sv.Available(); err != nil {
			avail = "  [unavailable: " + err.Error() + "]"
		}
		s += fmt.Sprintf("  %-15s %s%s\n", sv.Name, sv.Description, avail)
	}
	return s
}

func runProxy(ctx context.Context, env Env, args []string) error {
	sc, cc := defaultCPUs()
	fs := newFlags(env, "proxy", "[-proxies LIST] [-upstream NAME] [-c C] [-p LIST] [-rounds R] [-d D] [-reactord BIN] | -slow N [-size SIZE]", `
Reverse proxies under the "http" method: C keep-alive connections, P pipelined requests per
batch, every proxy a child process pinned to -server-cpu with GOMAXPROCS=-gomaxprocs, forwarding
to one upstream (-upstream, a harness server) pinned with the load generator to -client-cpu, so
the proxy's CPU per request is the only cost on its CPU. Proxies are interleaved within each
round; ratios are medians of per-round ratios against -baseline (default nginx-proxy).

reactord-proxy runs the daemon (cmd/reactord) with -proxy /=UPSTREAM: built from this checkout
into a temp dir unless -reactord names a binary. nginx-proxy is nginx (nginx-light) with
proxy_pass, HTTP/1.1 to the upstream and an upstream keepalive pool. httputil is Go's
httputil.ReverseProxy with an idle pool as large as the load.

-slow N measures memory instead: N clients each request a -size response through the proxy and
never read it; the proxy's RSS is reported once it stops growing, next to what the watermarks
allow (-output-buffer for reactord, passed with -reactord-args).

`+proxiesHelp())
	var avail []string
	for _, sv := range servers.Proxies() {
		if sv.Name == "reactord-proxy" || sv.Available() == nil {
			avail = append(avail, sv.Name)
		}
	}
	proxyList := fs.String("proxies", strings.Join(avail, ","), "comma-separated proxy `names`")
	upstream := fs.String("upstream", "fasthttp", "harness server `name` the proxies forward to")
	pollerList := fs.String("pollers", "epoll", "poller `backends` for reactord-proxy")
	conns := fs.Int("c", 64, "connections C")
	pipes := fs.String("p", "1,16", "comma-separated pipelining `depths` P")
	warmup := fs.Duration("warmup", time.Second, "warm-up before each measured window")
	dur := fs.Duration("d", 5*time.Second, "measured window per run")
	rounds := fs.Int("rounds", 3, "rounds R")
	serverCPU := fs.Int("server-cpu", sc, "pin proxies to `cpu` (-1: no pinning)")
	clientCPU := fs.Int("client-cpu", cc, "pin the load generator and the upstream to `cpu` (-1: no pinning)")
	gmp := fs.Int("gomaxprocs", 1, "GOMAXPROCS of the proxy process (0: inherit)")
	loops := fs.Int("loops", 1, "event loops of reactord-proxy")
	baseline := fs.String("baseline", "", "proxy `labels` to compare with (default nginx-proxy if measured, else the first)")
	binary := fs.String("reactord", "", "reactord daemon `binary` for reactord-proxy (default: build ../cmd/reactord)")
	extra := fs.String("reactord-args", "", "extra daemon `flags` for reactord-proxy, space-separated")
	jsonFile := fs.String("json", "", "write every run and the summary as JSON to `file` (- for stdout)")
	slow := fs.Int("slow", 0, "memory mode: N slow clients instead of the load")
	size := fs.Int64("size", 4<<20, "memory mode: response `bytes` per client")
	quiet := fs.Bool("q", false, "no per-run lines on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	names := stringList(*proxyList)
	if slices.Contains(names, "reactord-proxy") {
		bin := *binary
		if bin == "" {
			dir, err := os.MkdirTemp("", "bench-reactord-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if bin, err = buildReactord(ctx, dir); err != nil {
				return err
			}
		}
		os.Setenv(servers.EnvReactord, bin)
	}
	os.Setenv(servers.EnvProxyArgs, *extra)
	var targets []httpbench.Target
	for _, n := range names {
		sv, err := servers.Lookup(n)
		if err != nil || !sv.Proxy {
			return fmt.Errorf("%w: %q is not a proxy (have: %s)", ErrUsage, n, strings.Join(proxyNames(), ", "))
		}
		if err := sv.Available(); err != nil {
			fmt.Fprintf(env.Stderr, "skipping %s: %v\n", n, err)
			continue
		}
		if sv.UsesPoller {
			for _, p := range stringList(*pollerList) {
				targets = append(targets, httpbench.Target{Label: n + "/" + p, Server: n, Poller: p})
			}
			continue
		}
		targets = append(targets, httpbench.Target{Label: n, Server: n})
	}
	if len(targets) == 0 {
		return fmt.Errorf("%w: no proxy available to measure", ErrUsage)
	}
	if *slow > 0 {
		return runSlowClients(ctx, env, targets, *slow, *size, *gmp, *loops)
	}
	depths, err := intList(*pipes, 1)
	if err != nil {
		return err
	}
	if *conns < 1 || *rounds < 1 || *dur <= 0 || *warmup < 0 {
		return fmt.Errorf("%w: -c, -rounds, -d must be positive", ErrUsage)
	}
	if _, err := cpupin.RaiseNoFile(uint64(2**conns + 1024)); err != nil {
		return err
	}
	// The upstream runs for the whole command, with the load generator on the client CPU.
	up, err := child.Spawn(ctx, child.Spec{Server: *upstream, Loops: 1, GOMAXPROCS: 1, Stderr: env.Stderr})
	if err != nil {
		return fmt.Errorf("upstream %s: %w", *upstream, err)
	}
	defer up.Stop()
	if *clientCPU >= 0 {
		if err := cpupin.Pin(up.PID(), *clientCPU); err != nil {
			return err
		}
	}
	cfg := httpbench.Config{
		Targets: targets, Conns: *conns, Pipelines: depths, Warmup: *warmup, Duration: *dur, Rounds: *rounds,
		ServerCPU: *serverCPU, ClientCPU: *clientCPU, GOMAXPROCS: *gmp, Loops: *loops, Upstream: up.Addr(),
		Stderr: env.Stderr,
	}
	if !*quiet {
		cfg.Log = env.Stderr
	}
	labels := []string{}
	for _, t := range targets {
		labels = append(labels, t.Label)
	}
	bases := stringList(*baseline)
	if len(bases) == 0 {
		bases = []string{labels[0]}
		if slices.Contains(labels, "nginx-proxy") {
			bases[0] = "nginx-proxy"
		}
	}
	for _, b := range bases {
		if !slices.Contains(labels, b) {
			return fmt.Errorf("%w: baseline %q is not among the proxies measured (%s)", ErrUsage, b, strings.Join(labels, ", "))
		}
	}
	cfg.Bar = progress.New(cfg.PlannedDuration(), "proxy")
	runs, err := httpbench.Run(ctx, cfg)
	cfg.Bar.Finish()
	if err != nil {
		return err
	}
	sums := report.Summarize(runs, bases[0])
	fmt.Fprintf(env.Stdout, "proxy: upstream %s, C=%d, P=%v, warm-up %v, %v × %d rounds, proxy cpu %d GOMAXPROCS=%d, client+upstream cpu %d, %d CPUs, %s\n\n",
		*upstream, *conns, depths, *warmup, *dur, *rounds, cfg.ServerCPU, *gmp, cfg.ClientCPU, runtime.NumCPU(), runtime.Version())
	if err := report.Markdown(env.Stdout, sums, bases[0], *conns); err != nil {
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
		}{bases[0], sums, runs})
	}); err != nil {
		return err
	}
	for _, s := range sums {
		if s.Errors > 0 {
			fmt.Fprintf(env.Stderr, "warning: %s P=%d had %d errors\n", s.Label, s.Pipeline, s.Errors)
		}
	}
	return nil
}

func proxyNames() []string {
	var out []string
	for _, sv := range servers.Proxies() {
		out = append(out, sv.Name)
	}
	return out
}

// buildReactord builds cmd/reactord from the checkout this harness belongs to (the parent of
// the bench module) into dir.
func buildReactord(ctx context.Context, dir string) (string, error) {
	root := ""
	for _, cand := range []string{"..", "."} {
		if st, err := os.Stat(filepath.Join(cand, "cmd", "reactord", "main.go")); err == nil && !st.IsDir() {
			root = cand
			break
		}
	}
	if root == "" {
		return "", fmt.Errorf("%w: cannot find cmd/reactord from here; run from bench/ or pass -reactord", ErrUsage)
	}
	bin := filepath.Join(dir, "reactord")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/reactord")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building reactord: %w\n%s", err, out)
	}
	return bin, nil
}

// slowResult is one proxy's memory under N clients that do not read.
type slowResult struct {
	Label     string  `json:"label"`
	Clients   int     `json:"clients"`
	Size      int64   `json:"size"`
	RSSBefore int64   `json:"rss_before"`
	RSSAfter  int64   `json:"rss_after"`
	PerClient float64 `json:"per_client"`
}

// runSlowClients starts a blob upstream answering size bytes, then for each proxy opens n
// connections that each send one request and never read, and reports the proxy's RSS once it
// stops growing.
func runSlowClients(ctx context.Context, env Env, targets []httpbench.Target, n int, size int64, gmp, loops int) error {
	if _, err := cpupin.RaiseNoFile(uint64(4*n + 1024)); err != nil {
		return err
	}
	os.Setenv(servers.EnvBlobSize, fmt.Sprint(size))
	up, err := child.Spawn(ctx, child.Spec{Server: "blob", Loops: 1, Stderr: env.Stderr})
	if err != nil {
		return fmt.Errorf("blob upstream: %w", err)
	}
	defer up.Stop()
	var results []slowResult
	for _, t := range targets {
		proc, err := child.Spawn(ctx, child.Spec{Server: t.Server, Poller: t.Poller, Loops: loops, GOMAXPROCS: gmp,
			Stderr: env.Stderr, Upstream: up.Addr(), Timeout: 60 * time.Second})
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label, err)
		}
		res, err := measureSlow(ctx, t.Label, proc.Addr(), proc.PID(), n, size)
		proc.Stop()
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label, err)
		}
		results = append(results, res)
		fmt.Fprintf(env.Stderr, "%s: %d clients: RSS %.1f MiB → %.1f MiB (%.1f KiB per client)\n", t.Label, n,
			float64(res.RSSBefore)/(1<<20), float64(res.RSSAfter)/(1<<20), res.PerClient/1024)
	}
	fmt.Fprintf(env.Stdout, "proxy -slow: %d clients each requesting %d bytes and reading none\n\n", n, size)
	fmt.Fprintln(env.Stdout, "| proxy | RSS before | RSS with the clients | per client |")
	fmt.Fprintln(env.Stdout, "|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(env.Stdout, "| %s | %.1f MiB | %.1f MiB | %.1f KiB |\n", r.Label, float64(r.RSSBefore)/(1<<20),
			float64(r.RSSAfter)/(1<<20), r.PerClient/1024)
	}
	return nil
}

func measureSlow(ctx context.Context, label, addr string, pid, n int, size int64) (slowResult, error) {
	res := slowResult{Label: label, Clients: n, Size: size}
	before, err := procstat.ReadRSS(pid)
	if err != nil {
		return res, err
	}
	res.RSSBefore = before
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte("GET /blob HTTP/1.1\r\nHost: bench\r\n\r\n")
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return res, fmt.Errorf("client %d: %w", i, err)
		}
		// A small receive buffer: the kernel holds little, the proxy must hold (or not) the rest.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10)
		}
		conns = append(conns, c)
		if _, err := c.Write(req); err != nil {
			return res, fmt.Errorf("client %d: %w", i, err)
		}
	}
	// RSS grows while the responses flow into buffers; take it once it has been stable for a
	// few samples (or after a minute).
	deadline := time.Now().Add(time.Minute)
	last, stable := int64(0), 0
	for time.Now().Before(deadline) && stable < 6 {
		time.Sleep(500 * time.Millisecond) // sampling period of a settling value, not a synchronisation
		rss, err := procstat.ReadRSS(pid)
		if err != nil {
			return res, err
		}
		if d := rss - last; d < 0 && -d < rss/100 || d >= 0 && d < rss/100 {
			stable++
		} else {
			stable = 0
		}
		last = rss
	}
	if last == 0 {
		return res, errors.New("no RSS sample")
	}
	res.RSSAfter = last
	res.PerClient = float64(last-before) / float64(n)
	return res, nil
}
