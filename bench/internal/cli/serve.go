package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/cpupin"
	"github.com/reactord/reactord/bench/internal/servers"
	"golang.org/x/sys/unix"
)

func serversHelp() string {
	s := "servers:\n"
	for _, sv := range append(servers.All(), servers.Proxies()...) {
		avail := ""
		if err := sv.Available(); err != nil {
			avail = "  [unavailable: " + err.Error() + "]"
		}
		s += fmt.Sprintf("  %-17s %s%s\n", sv.Name, sv.Description, avail)
	}
	return s
}

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "serve", "-server NAME [-addr HOST:PORT] [-poller P] [-loops N]", `
Runs one benchmark server in the foreground until SIGINT or SIGTERM. Every server answers every
method on every path with 200 and "Hello, World!" (text/plain, Content-Length 13), after reading
any request body (floor excepted: it only scans for CRLFCRLF).

`+serversHelp()+`
The harness itself runs servers as "bench serve -control": the READY line on stdout gives the
address and the pid whose cost is the server's, "stats" on stdin prints Go memory figures, and
"mallocs" prints the heap allocation count (for allocations per request), and EOF on
stdin shuts the server down.`)
	name := fs.String("server", "", "server `name` (see above)")
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address` (loopback; port 0 picks one)")
	pollerName := fs.String("poller", "", "poller `backend` for our stack: epoll, poll, select (default: the reactor's)")
	loops := fs.Int("loops", 1, "event loops / worker threads where the server has them")
	cpu := fs.Int("cpu", -1, "pin this process to `cpu` (-1: no pinning)")
	control := fs.Bool("control", false, "harness mode: READY line, stats on stdin, exit on stdin EOF")
	upstream := fs.String("upstream", "", "for a reverse proxy: the upstream `host:port` it forwards to")
	verbose := fs.Bool("v", false, "log debug lines of the server to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the server to `file` until it stops (in-process servers only)")
	tlsKind := fs.String("tls", "", "serve HTTPS with a self-signed certificate of this `kind` (ecdsa: P-256, rsa: 2048 bits)")
	if err := parse(fs, args); err != nil {
		return err
	}
	sv, err := servers.Lookup(*name)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if *cpu >= 0 {
		if err := cpupin.Pin(0, *cpu); err != nil {
			return err
		}
	}
	// A server under test may hold many connections; the harness raises its own limit, which
	// this process inherits, but a user starting serve by hand gets the same.
	if _, err := cpupin.RaiseNoFile(1 << 20); err != nil {
		return err
	}
	log := newLogger(env.Stderr, *verbose)
	defer func() { _ = log.Sync() }()
	inst, err := sv.Start(ctx, servers.Options{Addr: *addr, Poller: *pollerName, Loops: *loops, Logger: log, Upstream: *upstream, TLS: *tlsKind})
	if err != nil {
		return err
	}
	defer inst.Close()
	if *cpuProfile != "" {
		if inst.PID() != os.Getpid() {
			return fmt.Errorf("%w: -cpuprofile: %s runs in another process", ErrUsage, sv.Name)
		}
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return err
		}
		// Deferred after inst.Close, so it runs first: the profile covers serving only.
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	fmt.Fprintln(env.Stdout, child.FormatReady(inst.Addr(), inst.PID()))
	if f, ok := env.Stdout.(*os.File); ok {
		_ = f.Sync()
	}
	if !*control {
		scheme := "http"
		if *tlsKind != "" {
			scheme = "https"
		}
		fmt.Fprintf(env.Stderr, "serving %s on %s://%s (GOMAXPROCS=%d); ^C to stop\n", sv.Name, scheme, inst.Addr(), runtime.GOMAXPROCS(0))
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, unix.SIGINT, unix.SIGTERM)
		defer signal.Stop(sig)
		select {
		case <-sig:
		case <-ctx.Done():
		}
		return inst.Close()
	}
	sc := bufio.NewScanner(env.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "stats":
			var st child.RuntimeStats
			if inst.PID() == os.Getpid() {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				st = child.RuntimeStats{HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc,
					StackInuse: ms.StackInuse, Goroutines: uint64(runtime.NumGoroutine())}
			}
			fmt.Fprintln(env.Stdout, child.FormatStats(st))
		case "mallocs":
			// No GC here: this is sampled around a measured window and must stay cheap.
			var ms runtime.MemStats
			inProcess := inst.PID() == os.Getpid()
			if inProcess {
				runtime.ReadMemStats(&ms)
			}
			fmt.Fprintln(env.Stdout, child.FormatMallocs(ms.Mallocs, inProcess))
		default:
			fmt.Fprintf(env.Stderr, "serve: unknown control line %q\n", sc.Text())
		}
	}
	return inst.Close()
}
