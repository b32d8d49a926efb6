// Command reactord is the reactord HTTP/1.1 server daemon: static files (or a built-in page),
// /healthz and Prometheus /metrics, served by the event-loop reactor through the strict
// HTTP/1.1 codec. Run `reactord -h` for the flags; docs/OPERATIONS.md covers production use.
//
// Exit status: 0 after -h, -version or a graceful shutdown; 1 when the server fails or the
// shutdown timeout forced connections closed; 2 for an invalid configuration (one line on
// stderr naming the key, printed before anything is bound).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/cmd/reactord/internal/config"
	"github.com/reactord/reactord/cmd/reactord/internal/connlimit"
	"github.com/reactord/reactord/cmd/reactord/internal/logging"
	"github.com/reactord/reactord/cmd/reactord/internal/metrics"
	"github.com/reactord/reactord/cmd/reactord/internal/proxy"
	"github.com/reactord/reactord/poller"
	"github.com/reactord/reactord/reactor"
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
		names := reactor.Pollers()
		fmt.Fprintf(stdout, "reactord %s (%s, %s/%s, pollers: %s)\n", versionString(), runtime.Version(),
			runtime.GOOS, runtime.GOARCH, strings.Join(names, " "))
		return exitOK
	}
	// Signals are caught from here on: SIGHUP's and SIGUSR2's default actions would kill the
	// process, and a SIGTERM that arrives while files are opened or sockets bound waits for
	// serve, which then shuts down gracefully.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR2)
	defer signal.Stop(sigs)

	lvl, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		return configError(stderr, "log-level", err)
	}
	level := zap.NewAtomicLevelAt(lvl)
	log, err := logging.NewAt(level, cfg.LogFormat, stderr)
	if err != nil {
		return configError(stderr, "log-format", err)
	}
	defer func() { _ = log.Sync() }() // stderr may refuse fsync (EINVAL): nothing to do about it

	cfg.Poller = usablePoller(cfg.Poller, log)
	d := &daemon{args: args, cfg: cfg, log: log, level: level, stderr: stderr, certs: new(certStore)}
	d.perIP = connlimit.New(log.Named("connlimit"))
	defer d.perIP.Close()
	if d.exe, err = executablePath(); err != nil {
		log.Warn("cannot locate the executable: SIGUSR2 upgrades are disabled", zap.Error(err))
	}
	if d.notify, err = newNotifier(); err != nil {
		log.Warn("not notifying systemd", zap.Error(err))
	}
	d.metrics, err = metrics.New(metrics.Options{Version: versionString(), Source: d.snapshot})
	if err != nil {
		log.Error("metrics", zap.Error(err))
		return exitFailure
	}
	defer d.metrics.Close()
	d.proxyMetrics = proxy.NewMetrics()
	for _, c := range d.proxyMetrics.Collectors() {
		if err := d.metrics.Registry().Register(c); err != nil {
			log.Error("proxy metrics", zap.Error(err))
			return exitFailure
		}
	}
	return d.serve(sigs)
}

// configError reports a configuration problem found after parsing (the access log cannot
// be opened, the root cannot be read, ...) in the same one-line form as the parser's.
func configError(stderr io.Writer, key string, err error) int {
	var ce *config.Error
	if !errors.As(err, &ce) {
		ce = &config.Error{Key: key, Reason: err.Error()}
	}
	fmt.Fprintf(stderr, "reactord: invalid config: %v\n", ce)
	return exitConfig
}

// usablePoller returns name, or the best backend compiled for this OS when the backend name
// resolves to (REACTOR_POLLER included) is compiled in but this kernel refuses it: io_uring
// under a seccomp profile or kernel.io_uring_disabled, or on a kernel too old for it (5.13 for
// uring-poll, 6.1 for the uring completion mode). One warning says so, and the daemon starts,
// so a configuration written for one machine runs on another. Unknown names are left for the
// reactor to report.
func usablePoller(name string, log *zap.Logger) string {
	resolved, err := reactor.CheckPoller(name)
	if !errors.Is(err, poller.ErrUnsupported) {
		return name
	}
	best := reactor.Pollers()[0]
	log.Warn("poller unavailable here, falling back", zap.String("poller", resolved), zap.String("fallback", best), zap.Error(err))
	return best
}
