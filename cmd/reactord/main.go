// Command reactord is the reactord HTTP/1.1 server daemon: static files (or a built-in page),
// /healthz and Prometheus /metrics, served by the event-loop reactor through the strict
// HTTP/1.1 codec. Run `reactord -h` for the flags; docs/OPERATIONS.md covers production use.
//
// Exit status: 0 after -h, -version or a graceful shutdown; 1 when the server fails or the
// shutdown timeout forced connections closed; 2 for an invalid configuration (one line on
// stderr naming the key, printed before anything is bound).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/cmd/reactord/internal/accesslog"
	"github.com/reactord/reactord/cmd/reactord/internal/config"
	"github.com/reactord/reactord/cmd/reactord/internal/logging"
	"github.com/reactord/reactord/cmd/reactord/internal/metrics"
	"github.com/reactord/reactord/cmd/reactord/internal/site"
	"github.com/reactord/reactord/cmd/reactord/internal/static"
	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/poller"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise the module
// version from the build info is used, or "devel".
var version = ""

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitConfig  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// run is the whole daemon; it returns the exit status. Everything that can be wrong with the
// configuration is found before the first socket is bound.
func run(args []string, stdout io.Writer, stderr *os.File) int {
	cfg, err := config.Parse(args, stdout)
	if errors.Is(err, config.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "reactord: invalid config: %v\n", err)
		return exitConfig
	}
	if cfg.ShowVersion {
		var names []string
		for _, b := range poller.Backends() {
			names = append(names, b.Name)
		}
		fmt.Fprintf(stdout, "reactord %s (%s, %s/%s, pollers: %s)\n", versionString(), runtime.Version(),
			runtime.GOOS, runtime.GOARCH, strings.Join(names, " "))
		return exitOK
	}
	// Signals are caught from here on: SIGHUP's default action would kill the process, and a
	// SIGTERM that arrives while files are opened or sockets bound waits for serve, which
	// then shuts down gracefully.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer signal.Stop(sigs)

	configError := func(key string, err error) int {
		fmt.Fprintf(stderr, "reactord: invalid config: %v\n", &config.Error{Key: key, Reason: err.Error()})
		return exitConfig
	}

	log, err := logging.New(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return configError("log-level", err)
	}
	defer func() { _ = log.Sync() }() // stderr may refuse fsync (EINVAL): nothing to do about it

	access, err := accesslog.New(cfg.AccessLog)
	if err != nil {
		return configError("access-log", err)
	}
	defer access.Close()

	var files *static.FS
	if cfg.Root != "" {
		files, err = static.New(static.Options{
			Root:           cfg.Root,
			FollowSymlinks: cfg.FollowSymlinks,
			DirListing:     cfg.DirListing,
			ServeDotfiles:  cfg.ServeDotfiles,
		})
		if err != nil {
			return configError("root", err)
		}
		defer files.Close()
	}

	cfg.Poller = usablePoller(cfg.Poller, log)
	d := &daemon{cfg: cfg, log: log, access: access, app: &app{files: files}}
	srv, err := d.newServer()
	if err != nil {
		// Bad poller names and out-of-range numbers were caught by Validate; what is left
		// here is the reactor refusing an option, still a configuration problem.
		return configError("server", err)
	}
	d.srv = srv
	d.app.metrics, err = metrics.New(metrics.Options{Version: versionString(), Source: d.snapshot})
	if err != nil {
		log.Error("metrics", zap.Error(err))
		return exitFailure
	}
	defer d.app.metrics.Close()
	page, err := site.Render(site.Info{Version: versionString(), Poller: srv.Reactor().PollerName(), Loops: cfg.Loops})
	if err != nil {
		log.Error("built-in page", zap.Error(err))
		return exitFailure
	}
	d.app.setPage(page)
	return d.serve(sigs)
}

// daemon ties the running pieces together.
type daemon struct {
	cfg    config.Config
	log    *zap.Logger
	access *accesslog.Logger
	app    *app
	srv    *codec.Server
}

// snapshot adapts the server's counters to the metrics package, at scrape time.
func (d *daemon) snapshot() metrics.Snapshot {
	st := d.srv.Stats()
	s := metrics.Snapshot{
		Poller:        d.srv.Reactor().PollerName(),
		Rejected:      st.Rejected,
		OpenConns:     st.ConnsOpen,
		AcceptedConns: st.ConnsAccepted,
		ClosedConns:   st.ConnsClosed,
		BytesIn:       st.BytesIn,
		BytesOut:      st.BytesOut,
		Loops:         make([]metrics.LoopStats, len(st.Loops)),
	}
	for i, l := range st.Loops {
		s.Loops[i] = metrics.LoopStats{Iterations: l.Iterations, Wakeups: l.Wakeups, Waits: l.Waits, Events: l.Events}
	}
	return s
}

// serve binds the listeners, starts the loops and handles signals until shutdown.
func (d *daemon) serve(sigs <-chan os.Signal) int {
	var bound []string
	for _, a := range d.cfg.Listen {
		network, addr := listenSpec(a)
		if network == "unix" {
			if err := removeStaleSocket(addr); err != nil {
				d.log.Warn("stale unix socket", zap.String("path", addr), zap.Error(err))
			}
		}
		na, err := d.srv.Listen(network, addr)
		if err != nil {
			d.log.Error("listen", zap.String("addr", a), zap.Error(err))
			d.srv.Close()
			return exitFailure
		}
		bound = append(bound, formatAddr(na))
	}
	if err := d.srv.Start(); err != nil {
		d.log.Error("start", zap.Error(err))
		d.srv.Close()
		return exitFailure
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- d.srv.Serve() }()

	for _, a := range bound {
		d.log.Info("listening", zap.String("addr", a), zap.String("poller", d.srv.Reactor().PollerName()),
			zap.Int("loops", d.cfg.Loops), zap.String("version", versionString()))
	}
	if d.cfg.AddrFile != "" {
		if err := writeAddrFile(d.cfg.AddrFile, bound); err != nil {
			d.log.Error("addr file", zap.Error(err))
			d.srv.Close()
			return exitFailure
		}
	}

	for {
		select {
		case err := <-serveErr:
			// The loops stopped without a shutdown request: a loop failed.
			d.log.Error("server stopped", zap.Error(err))
			return exitFailure
		case sig := <-sigs:
			if sig == unix.SIGHUP {
				d.reopen()
				continue
			}
			return d.shutdown(sig, sigs, serveErr)
		}
	}
}

// reopen handles SIGHUP: the access log file is reopened under its name (logrotate has
// renamed the old one).
func (d *daemon) reopen() {
	if err := d.access.Reopen(); err != nil {
		d.log.Error("reopen access log", zap.String("path", d.cfg.AccessLog), zap.Error(err))
		return
	}
	d.log.Info("reopened access log", zap.String("path", d.cfg.AccessLog))
}

// shutdown stops accepting, lets in-flight requests finish and idle connections close, all
// within -shutdown-timeout. A second SIGTERM or SIGINT cuts it short.
func (d *daemon) shutdown(sig os.Signal, sigs <-chan os.Signal, serveErr <-chan error) int {
	start := time.Now()
	d.log.Info("shutting down", zap.String("signal", sig.String()), zap.Duration("timeout", d.cfg.ShutdownTimeout))
	d.app.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.srv.Shutdown(ctx) }()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case s := <-sigs:
			if s == unix.SIGHUP {
				d.reopen()
				continue
			}
			d.log.Warn("second signal: closing connections now", zap.String("signal", s.String()))
			cancel()
		}
	}
	<-serveErr // Serve returns once the loops have stopped
	open := d.srv.Stats().ConnsOpen
	if err != nil {
		d.log.Warn("shutdown timed out; remaining connections were closed", zap.Error(err), zap.Duration("took", time.Since(start)))
		return exitFailure
	}
	d.log.Info("stopped", zap.Duration("took", time.Since(start)), zap.Int64("open", open))
	return exitOK
}

// usablePoller returns name, or the best backend compiled for this OS when the backend name
// resolves to (REACTOR_POLLER included) is compiled in but this kernel refuses it: io_uring
// under a seccomp profile or kernel.io_uring_disabled, or on a kernel before 5.13. One warning
// says so, and the daemon starts, so a configuration written for one machine runs on another.
// Unknown names are left for the reactor to report.
func usablePoller(name string, log *zap.Logger) string {
	b, err := poller.Lookup(name)
	if err != nil {
		return name
	}
	err = b.Available()
	if !errors.Is(err, poller.ErrUnsupported) {
		return name
	}
	best := poller.Backends()[0].Name
	log.Warn("poller unavailable here, falling back", zap.String("poller", b.Name), zap.String("fallback", best), zap.Error(err))
	return best
}
