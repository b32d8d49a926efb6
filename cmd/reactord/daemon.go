package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/cmd/reactord/internal/config"
	"github.com/reactord/reactord/cmd/reactord/internal/connlimit"
	"github.com/reactord/reactord/cmd/reactord/internal/logging"
	"github.com/reactord/reactord/cmd/reactord/internal/metrics"
	"github.com/reactord/reactord/cmd/reactord/internal/proxy"
	"github.com/reactord/reactord/reactor"
)

// daemon ties the running pieces together. Its fields are used by the goroutine running
// serve (the control goroutine: signals, reloads, upgrades, shutdown), except those under mu,
// which /metrics reads from the loops.
type daemon struct {
	args   []string // the command line, parsed again by every reload and by an upgrade
	exe    string   // the binary an upgrade starts ("" when it cannot be located)
	log    *zap.Logger
	level  zap.AtomicLevel
	stderr *os.File
	notify *notifier
	status status

	metrics *metrics.Metrics
	// proxyMetrics are the reverse proxy's instruments, registered once with metrics and
	// shared by every generation's proxy.
	proxyMetrics *proxy.Metrics
	cfg          config.Config // in force
	cur          *generation   // serving
	admin        *adminServer  // nil without an admin listener
	genSeq       int
	retired      sync.WaitGroup // generations being retired in the background
	upgrade      *upgrade       // in progress, or nil
	certs        *certStore     // the HTTPS certificate in force, shared by the generations
	// perIP counts the public listeners' connections per client address for
	// -max-conns-per-ip: one count for the process, shared by the generations, so that a
	// reload neither resets it nor lets a client hold the limit on the old and the new one.
	perIP *connlimit.Counter

	mu      sync.Mutex
	live    []*generation    // serving or retiring: their counters are read live
	totals  metrics.Snapshot // counters of the generations that have stopped
	pollerN string
}

// serve binds the listeners, starts the loops and handles signals until shutdown or a
// completed upgrade.
func (d *daemon) serve(sigs <-chan os.Signal) int {
	inh, ready, parent, err := upgradeSockets()
	if err != nil {
		d.log.Error("inherited sockets", zap.Error(err))
		return exitFailure
	}
	if ready == nil {
		if inh, err = activationSockets(d.log); err != nil {
			d.log.Error("socket activation", zap.Error(err))
			return exitFailure
		}
	}
	defer closeSockets(inh) // those not taken; taken ones are marked -1
	if d.admin, err = d.newAdmin(d.cfg, inh); err != nil {
		return d.startFailed(err)
	}
	g, err := d.newGeneration(d.cfg, inh)
	if err != nil {
		if d.admin != nil {
			d.admin.srv.Close()
		}
		return d.startFailed(err)
	}
	closeUnused(inh, d.log)
	d.certs.set(g.cert)
	if d.admin != nil {
		if err := d.admin.start(); err != nil {
			d.admin.srv.Close()
			g.close()
			d.log.Error("start admin listener", zap.Error(err))
			return exitFailure
		}
	}
	if err := g.start(); err != nil {
		g.close()
		d.admin.stop(context.Background(), false)
		d.log.Error("start", zap.Error(err))
		return exitFailure
	}
	d.install(g)
	for _, gr := range g.groups {
		d.log.Info("listening", zap.String("addr", formatAddr(gr.addr)), zap.Bool("tls", gr.Role == roleTLS),
			zap.String("poller", g.srv.Reactor().PollerName()),
			zap.Int("loops", d.cfg.Loops), zap.String("version", versionString()), zap.String("from", socketOrigin(gr)))
	}
	if g.cert != nil {
		d.log.Info("certificate", zap.String("file", g.cert.certPath), zap.String("subject", g.cert.commonNam),
			zap.Time("not_after", g.cert.notAfter))
	}
	if d.admin != nil {
		for _, gr := range d.admin.groups {
			d.log.Info("admin listening", zap.String("addr", formatAddr(gr.addr)), zap.String("from", socketOrigin(gr)))
		}
	}
	// The pid file first: the addr file is what scripts and tests wait for, so when it
	// appears everything else the process publishes must already be in place.
	if err := d.writePidFile(); err != nil {
		d.log.Error("pid file", zap.Error(err))
		return d.stop(context.Background(), false, exitFailure)
	}
	if err := d.publish(); err != nil {
		d.log.Error("addr file", zap.Error(err))
		return d.stop(context.Background(), false, exitFailure)
	}
	if ready != nil {
		// Started by an upgrade: tell the old process, which then hands systemd over
		// (MAINPID) and stops. Until it does, it is the main process and our notifications
		// would be refused.
		_, werr := ready.WriteString("ready\n")
		ready.Close()
		if werr != nil {
			d.log.Warn("the process that started this one did not hear it is ready", zap.Error(werr))
		}
		d.log.Info("serving after an upgrade", zap.Int("from_pid", parent))
	} else if err := d.notify.send("READY=1", "STATUS=serving", fmt.Sprintf("MAINPID=%d", os.Getpid())); err != nil {
		d.log.Warn("sd_notify", zap.Error(err))
	}
	return d.loop(sigs)
}

// startFailed reports why the first generation could not be built: a configuration
// problem (exit 2, one line on stderr, as the parser's) or anything else (exit 1, logged).
func (d *daemon) startFailed(err error) int {
	if errors.Is(err, config.ErrInvalid) {
		return configError(d.stderr, "", err)
	}
	d.log.Error("listen", zap.Error(err))
	return exitFailure
}

func socketOrigin(g socketGroup) string {
	switch {
	case g.Spec == "" && g.Name != "":
		return "systemd (" + g.Name + ")"
	case g.Spec == "":
		return "systemd"
	}
	return g.Spec
}

// install makes g the serving generation.
func (d *daemon) install(g *generation) {
	d.mu.Lock()
	d.cur = g
	d.live = append(d.live, g)
	d.pollerN = g.srv.Reactor().PollerName()
	d.mu.Unlock()
}

// loop handles signals, the config file watch and upgrade results until the process stops.
func (d *daemon) loop(sigs <-chan os.Signal) int {
	watch := newWatcher(d.cfg.ConfigFile, d.cfg.WatchConfig, d.log)
	defer watch.stop()
	for {
		var upgraded <-chan upgradeResult
		if d.upgrade != nil {
			upgraded = d.upgrade.done
		}
		select {
		case err := <-d.cur.served:
			// The loops stopped without a shutdown request: a loop failed.
			d.log.Error("server stopped", zap.Error(err))
			d.cur.served <- err // for retire
			return d.stop(context.Background(), false, exitFailure)
		case sig := <-sigs:
			switch sig {
			case unix.SIGHUP:
				if d.upgrade != nil {
					d.log.Warn("SIGHUP ignored: an upgrade is in progress (the new process reads the configuration itself)")
					continue
				}
				d.reload("SIGHUP")
				watch.reset(d.cfg.ConfigFile, d.cfg.WatchConfig)
			case unix.SIGUSR2:
				if d.upgrade != nil {
					d.log.Warn("SIGUSR2 ignored: an upgrade is already in progress", zap.Int("pid", d.upgrade.pid()))
					continue
				}
				d.startUpgrade()
			default:
				return d.shutdown(sig, sigs)
			}
		case <-watch.C():
			if watch.changed() {
				if d.upgrade != nil {
					continue // checked again at the next tick
				}
				d.reload("config file changed")
				watch.reset(d.cfg.ConfigFile, d.cfg.WatchConfig)
			}
		case res := <-upgraded:
			d.upgrade = nil
			if res.err != nil {
				d.log.Error("upgrade failed; this process keeps serving", zap.String("binary", d.exe), zap.Error(res.err))
				continue
			}
			return d.handOff(res.pid, sigs)
		}
	}
}

// reload reads the configuration again (the -config file and the command line) and, when
// it is valid and differs, puts a new generation in force (see generation). It also opens the
// access log file again by name first, whatever the outcome, as logrotate expects of SIGHUP.
func (d *daemon) reload(trigger string) {
	d.notify.send("RELOADING=1", monotonicUsec(), "STATUS=reloading")
	defer d.notify.send("READY=1", "STATUS=serving")
	if err := d.cur.site.access.Reopen(); err != nil {
		d.log.Error("reopen access log", zap.String("path", d.cfg.AccessLog), zap.Error(err))
	} else if d.cfg.AccessLog != "off" && d.cfg.AccessLog != "stdout" {
		d.log.Info("reopened access log", zap.String("path", d.cfg.AccessLog))
	}
	fail := func(err error) {
		d.metrics.Reloaded(false)
		d.log.Error("configuration reload failed; the running configuration is kept",
			zap.String("trigger", trigger), zap.Int("generation", d.cur.id), zap.Error(err))
	}
	cfg, err := config.Parse(d.args, nil)
	if err != nil {
		fail(err)
		return
	}
	cfg.Poller = usablePoller(cfg.Poller, d.log)
	// What only a new process can change keeps its running value.
	for _, f := range []struct {
		key      string
		now, new *string
	}{
		{"admin-listen", &d.cfg.AdminListen, &cfg.AdminListen},
		{"log-format", &d.cfg.LogFormat, &cfg.LogFormat},
		{"pid-file", &d.cfg.PidFile, &cfg.PidFile},
	} {
		if *f.now != *f.new {
			d.log.Warn("setting not reloaded: it takes effect at the next upgrade (SIGUSR2) or restart",
				zap.String("key", f.key), zap.String("running", *f.now), zap.String("file", *f.new))
			*f.new = *f.now
		}
	}
	changed := config.Changed(d.cfg, cfg)
	if len(changed) == 0 && len(cfg.TLSListen) > 0 {
		// The same configuration, but perhaps a renewed certificate: swapped in place for
		// the handshakes from now on; no connection is touched.
		cert, err := loadCert(cfg)
		if err != nil {
			fail(err)
			return
		}
		if !d.certs.same(cert) {
			d.certs.set(cert)
			d.cur.cert = cert
			d.metrics.Reloaded(true)
			d.log.Info("certificate reloaded", zap.String("trigger", trigger), zap.String("file", cert.certPath),
				zap.String("subject", cert.commonNam), zap.Time("not_after", cert.notAfter))
			return
		}
	}
	if len(changed) == 0 {
		d.metrics.Reloaded(true)
		d.log.Info("configuration reloaded: nothing changed", zap.String("trigger", trigger), zap.Int("generation", d.cur.id))
		return
	}
	inh, err := handOver(d.cur.srv.Reactor(), d.cur.groups)
	if err != nil {
		fail(fmt.Errorf("duplicate the listening sockets: %w", err))
		return
	}
	g, err := d.newGeneration(cfg, inh)
	closeSockets(inh) // duplicates of sockets whose address is gone, or all of them on error
	if err == nil {
		// The new certificate before the new generation accepts; the old generation's
		// handshakes from now on get it too.
		prev := d.certs.set(g.cert)
		if err = g.start(); err != nil {
			d.certs.set(prev)
			g.close()
		}
	}
	if err != nil {
		fail(err)
		return
	}
	old := d.cur
	d.install(g)
	if lvl, err := logging.ParseLevel(cfg.LogLevel); err == nil {
		d.level.SetLevel(lvl)
	}
	d.cfg = cfg
	d.retireInBackground(old)
	if err := d.publish(); err != nil {
		d.log.Warn("addr file", zap.Error(err))
	}
	d.metrics.Reloaded(true)
	d.log.Info("configuration reloaded", zap.String("trigger", trigger), zap.Int("generation", g.id),
		zap.Int("previous", old.id), zap.Strings("changed", changed))
}

// retireInBackground retires g (see generation.retire) within its own shutdown timeout, on a
// goroutine of its own, so that a reload returns at once.
func (d *daemon) retireInBackground(g *generation) {
	d.retired.Add(1)
	go func() {
		defer d.retired.Done()
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
		defer cancel()
		start := time.Now()
		err := g.retire(ctx, true)
		d.bury(g)
		if err != nil {
			d.log.Warn("retired generation: shutdown timed out, remaining connections closed",
				zap.Int("generation", g.id), zap.Error(err), zap.Duration("took", time.Since(start)))
			return
		}
		d.log.Debug("retired generation stopped", zap.Int("generation", g.id), zap.Duration("took", time.Since(start)))
	}()
}

// bury moves a stopped generation's counters into the totals.
func (d *daemon) bury(g *generation) {
	st := g.srv.Stats()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, l := range d.live {
		if l == g {
			d.live = append(d.live[:i], d.live[i+1:]...)
			break
		}
	}
	addStats(&d.totals, st.Stats, st.Rejected)
}

// snapshot adapts the servers' counters to the metrics package, at scrape time: the serving
// generation's, those still retiring, and the totals of the stopped ones, so the counters
// only grow across reloads.
func (d *daemon) snapshot() metrics.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.totals
	s.Loops = append([]metrics.LoopStats(nil), d.totals.Loops...)
	s.Poller = d.pollerN
	for _, g := range d.live {
		st := g.srv.Stats()
		s.OpenConns += st.ConnsOpen
		s.TLSHandshakesActive += st.TLSHandshakesActive
		addStats(&s, st.Stats, st.Rejected)
	}
	s.ClientAddresses = d.perIP.Addresses()
	return s
}

func addStats(s *metrics.Snapshot, st reactor.Stats, rejected uint64) {
	s.AcceptedConns += st.ConnsAccepted
	s.ClosedConns += st.ConnsClosed
	s.ShedConns += st.ConnsShed
	s.RefusedPerIP += st.ConnsRefused // the per-address limit is the servers' only Admitter
	s.BytesIn += st.BytesIn
	s.BytesOut += st.BytesOut
	s.Rejected += rejected
	s.TLSHandshakes += st.TLSHandshakes
	s.TLSHandshakeErrors += st.TLSHandshakeErrors
	s.TLSHandshakeTimeouts += st.TLSHandshakeTimeouts
	s.TLSHandshakesAborted += st.TLSHandshakesAborted
	for i, l := range st.Loops {
		for len(s.Loops) <= i {
			s.Loops = append(s.Loops, metrics.LoopStats{})
		}
		s.Loops[i].Iterations += l.Iterations
		s.Loops[i].Wakeups += l.Wakeups
		s.Loops[i].Waits += l.Waits
		s.Loops[i].Events += l.Events
	}
}

// shutdown stops accepting, lets in-flight requests finish and idle connections close, all
// within -shutdown-timeout. A second SIGTERM or SIGINT cuts it short.
func (d *daemon) shutdown(sig os.Signal, sigs <-chan os.Signal) int {
	d.log.Info("shutting down", zap.String("signal", sig.String()), zap.Duration("timeout", d.cfg.ShutdownTimeout))
	d.status.stopping.Store(true)
	d.notify.send("STOPPING=1", "STATUS=shutting down")
	if u := d.upgrade; u != nil {
		// A new process is starting on our sockets: it would go on serving them.
		d.log.Warn("stopping the new process of the upgrade in progress", zap.Int("pid", u.pid()))
		u.abort()
	}
	return d.drainAll(sigs, false, "stopped")
}

// handOff finishes a successful upgrade: systemd learns the new main process, and this one
// stops accepting at once (the new one accepts from the same sockets), lets its connections
// finish within -shutdown-timeout, and exits.
func (d *daemon) handOff(pid int, sigs <-chan os.Signal) int {
	if err := d.notify.send(fmt.Sprintf("MAINPID=%d", pid), "READY=1", "STATUS=serving (upgraded)"); err != nil {
		d.log.Warn("sd_notify", zap.Error(err))
	}
	d.log.Info("upgrade: the new process serves; this one stops accepting and drains",
		zap.Int("pid", pid), zap.Duration("timeout", d.cfg.ShutdownTimeout))
	return d.drainAll(sigs, true, "stopped after the upgrade")
}

// drainAll retires every generation and the admin listener within -shutdown-timeout, while
// answering signals: a second SIGTERM or SIGINT closes everything at once; SIGHUP and SIGUSR2
// are ignored (the process is on its way out). It returns the exit status: 0, or 1 when the
// timeout cut connections.
func (d *daemon) drainAll(sigs <-chan os.Signal, release bool, doneMsg string) int {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- d.stop(ctx, release, exitOK) }()
	for {
		select {
		case code := <-done:
			open := d.snapshot().OpenConns
			if code != exitOK {
				d.log.Warn("shutdown timed out; remaining connections were closed", zap.Duration("took", time.Since(start)))
				return code
			}
			d.log.Info(doneMsg, zap.Duration("took", time.Since(start)), zap.Int64("open", open))
			return code
		case s := <-sigs:
			if s == unix.SIGHUP || s == unix.SIGUSR2 {
				d.log.Warn("signal ignored while stopping", zap.String("signal", s.String()))
				continue
			}
			d.log.Warn("second signal: closing connections now", zap.String("signal", s.String()))
			cancel()
		}
	}
}

// stop retires the serving generation, then the admin listener, and waits for the
// generations a reload retired; it removes the pid file if it is still this process's.
// It returns code, or exitFailure when ctx ran out before the connections were done.
func (d *daemon) stop(ctx context.Context, release bool, code int) int {
	err := d.cur.retire(ctx, release)
	d.bury(d.cur)
	d.admin.stop(ctx, release)
	d.retired.Wait()
	if !release {
		d.removeSocketFiles()
	}
	d.removePidFile()
	if err != nil {
		return exitFailure
	}
	return code
}

// removeSocketFiles removes the Unix socket files of the configured addresses when the process
// stops for good. The server that created a file removes it itself, but after a reload or an
// upgrade the file was created by an earlier generation or process, which left it for its
// successor; nobody serves it now. Files systemd created (activation) are systemd's.
func (d *daemon) removeSocketFiles() {
	groups := append([]socketGroup(nil), d.cur.groups...)
	if d.admin != nil {
		groups = append(groups, d.admin.groups...)
	}
	for _, g := range groups {
		path, ok := config.IsUnix(g.Spec)
		if !ok {
			continue
		}
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
	}
}

// publish writes the addr file: the public addresses one per line (in -listen syntax), then
// the admin ones as "admin=ADDR".
func (d *daemon) publish() error {
	if d.cfg.AddrFile == "" {
		return nil
	}
	var lines []string
	for _, g := range d.cur.groups {
		if g.Role == roleTLS {
			lines = append(lines, "tls="+formatAddr(g.addr))
			continue
		}
		lines = append(lines, formatAddr(g.addr))
	}
	if d.admin != nil {
		for _, g := range d.admin.groups {
			lines = append(lines, "admin="+formatAddr(g.addr))
		}
	}
	return writeAddrFile(d.cfg.AddrFile, lines)
}

// writePidFile writes the process id to -pid-file, atomically. After an upgrade the new
// process writes its own, and the old one, seeing a number not its own, leaves it.
func (d *daemon) writePidFile() error {
	if d.cfg.PidFile == "" {
		return nil
	}
	return writeFileAtomic(d.cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), ".reactord-pid-*")
}

func (d *daemon) removePidFile() {
	if d.cfg.PidFile == "" {
		return
	}
	b, err := os.ReadFile(d.cfg.PidFile)
	if err == nil && bytes.Equal(bytes.TrimSpace(b), []byte(strconv.Itoa(os.Getpid()))) {
		os.Remove(d.cfg.PidFile)
	}
}

// executablePath is the file an upgrade executes: the path this process was started as
// (made absolute), not /proc/self/exe, which keeps naming the old binary after a package
// manager replaced the file.
func executablePath() (string, error) {
	a := os.Args[0]
	if strings.ContainsRune(a, '/') {
		return filepath.Abs(a)
	}
	return exec.LookPath(a)
}
