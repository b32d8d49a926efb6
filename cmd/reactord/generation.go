package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/cmd/reactord/internal/accesslog"
	"github.com/reactord/reactord/cmd/reactord/internal/config"
	"github.com/reactord/reactord/cmd/reactord/internal/site"
	"github.com/reactord/reactord/cmd/reactord/internal/static"
	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// A generation is one configuration in force: the public HTTP server with its own loops, the
// app it serves (root, built-in page), its access log, and the sockets it listens on.
//
// A reload builds the next generation beside the running one, on duplicates of the same
// listening sockets (plus any new address), and starts it; only then is the old one retired:
// it stops accepting, marks its responses as the last on their connection, and shuts down
// within -shutdown-timeout. A request is therefore served entirely under one configuration,
// the one in force when its connection was accepted, and nothing queued on a socket is lost:
// both generations accept from it until the old one lets go. Anything that fails while the
// next generation is built (a root that vanished, a log that cannot be opened, an address
// that cannot be bound) discards it and leaves the running one untouched.
//
// Settings a generation cannot carry — the admin listener, the pid file, the log format —
// are the process's; changing them takes an upgrade (SIGUSR2) or a restart.
type generation struct {
	id     int
	cfg    config.Config
	site   responder
	srv    *codec.Server
	files  *static.FS
	groups []socketGroup // the plain listeners first, then the TLS ones
	cert   *loadedCert   // the certificate it was built with (nil without -tls-listen)
	served chan error    // Serve's result
}

// drainGrace bounds the first phase of retiring a server: while it lasts, the server
// answers with "Connection: close" and waits for its clients to leave after a response,
// before Shutdown closes the connections that are still idle. A keep-alive client sending
// requests back to back leaves at its next response; one that is idle for longer is closed
// by Shutdown, and is then free to retry (RFC 9112 §9.3.1), having sent nothing.
const drainGrace = time.Second

// newGeneration builds a generation for cfg, serving inh (sockets inherited from systemd, a
// previous process or the previous generation) and opening the configured addresses it does
// not cover. Nothing runs yet; on error everything it opened is closed, and the inherited
// sockets it did not take remain the caller's (FD >= 0).
func (d *daemon) newGeneration(cfg config.Config, inh []inheritedSocket) (_ *generation, err error) {
	d.genSeq++
	g := &generation{id: d.genSeq, cfg: cfg, served: make(chan error, 1)}
	g.site.log = d.log
	g.site.metrics = d.metrics
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	if g.site.access, err = accesslog.New(cfg.AccessLog); err != nil {
		return nil, &config.Error{Key: "access-log", Reason: err.Error()}
	}
	// The certificate first: a bad pair is the clearest error, and nothing is opened yet.
	if g.cert, err = loadCert(cfg); err != nil {
		return nil, err
	}
	g.site.hsts = hstsValue(cfg.HSTS)
	if cfg.Root != "" {
		g.files, err = static.New(static.Options{
			Root:           cfg.Root,
			FollowSymlinks: cfg.FollowSymlinks,
			DirListing:     cfg.DirListing,
			ServeDotfiles:  cfg.ServeDotfiles,
		})
		if err != nil {
			return nil, &config.Error{Key: "root", Reason: err.Error()}
		}
	}
	g.site.app = &app{files: g.files, metrics: d.metrics, status: &d.status, noOps: cfg.AdminListen != "" || d.admin != nil}
	if g.site.proxy, err = d.newProxy(cfg); err != nil {
		return nil, &config.Error{Key: "proxy", Reason: err.Error()}
	}
	var admit reactor.Admitter
	if cfg.MaxConnsPerIP > 0 {
		// Each generation admits with its own limit, into the process's one count.
		if admit, err = d.perIP.Limiter(cfg.MaxConnsPerIP); err != nil {
			return nil, &config.Error{Key: "max-conns-per-ip", Reason: err.Error()}
		}
	}
	if g.srv, err = newServer(cfg, &g.site, d.log, false, admit); err != nil {
		// Bad poller names and out-of-range numbers were caught by Validate; what is left
		// here is the reactor refusing an option, still a configuration problem.
		return nil, &config.Error{Key: "server", Reason: err.Error()}
	}
	page, err := site.Render(site.Info{Version: versionString(), Poller: g.srv.Reactor().PollerName(), Loops: cfg.Loops})
	if err != nil {
		return nil, fmt.Errorf("built-in page: %w", err)
	}
	g.site.app.setPage(page)
	if g.groups, err = bindRole(g.srv.Reactor(), roleListen, cfg.Listen, inh, d.log); err != nil {
		return nil, err
	}
	if len(g.groups) == 0 {
		return nil, fmt.Errorf("listen: %w", errNoSockets)
	}
	if len(cfg.TLSListen) > 0 || hasRole(inh, roleTLS) {
		tlsGroups, err := bindRole(g.srv.Reactor(), roleTLS, cfg.TLSListen, inh, d.log,
			codec.TLSListenOptions(serverTLSConfig(d.certs))...)
		g.groups = append(g.groups, tlsGroups...)
		if err != nil {
			return nil, err
		}
		if g.cert == nil && len(tlsGroups) > 0 {
			// HTTPS sockets from systemd, but no -tls-listen and so no certificate.
			return nil, &config.Error{Key: "tls-cert", Reason: "systemd passed HTTPS sockets (FileDescriptorName=tls) but -tls-listen, -tls-cert and -tls-key are not set"}
		}
		if cfg.RedirectHTTP {
			for _, gr := range tlsGroups {
				if a, ok := gr.addr.(*net.TCPAddr); ok {
					g.site.redirectPort = strconv.Itoa(a.Port)
					break
				}
			}
			if g.site.redirectPort == "" {
				return nil, &config.Error{Key: "redirect-http", Reason: "no TCP -tls-listen address to redirect to"}
			}
		}
	}
	return g, nil
}

// start starts the generation's loops; Serve's result arrives on g.served.
func (g *generation) start() error {
	if err := g.srv.Start(); err != nil {
		return err
	}
	go func() { g.served <- g.srv.Serve() }()
	if p := g.site.proxy; p != nil {
		if err := p.Start(g.srv.Reactor()); err != nil {
			g.site.log.Warn("proxy health checks", zap.Error(err))
		}
	}
	return nil
}

// retire stops the generation gracefully within ctx: release (the sockets are someone
// else's now: a new generation's or a new process's) stops accepting at once and leaves
// Unix socket files in place; otherwise (a shutdown) it keeps accepting through the grace
// phase, answering late clients with their last response, and Shutdown closes the listeners.
// Then Shutdown waits for in-flight requests and closes idle connections. It returns
// Shutdown's error (ctx's when time ran out) once the loops have stopped and the generation's
// files are closed.
func (g *generation) retire(ctx context.Context, release bool) error {
	if release {
		if err := g.srv.Reactor().ReleaseListeners(); err != nil && !errors.Is(err, codec.ErrServerClosed) {
			g.site.log.Warn("release listeners", zap.Int("generation", g.id), zap.Error(err))
		}
	}
	g.site.closing.Store(true)
	grace := drainGrace
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl)/2)
	}
	idle := time.NewTimer(grace)
	tick := time.NewTicker(10 * time.Millisecond)
wait:
	for g.srv.Stats().ConnsOpen > 0 {
		select {
		case <-tick.C:
		case <-idle.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	idle.Stop()
	tick.Stop()
	err := g.srv.Shutdown(ctx)
	<-g.served
	g.close()
	return err
}

// close releases what the generation holds besides the server's loops: its access log and
// its root. The server itself is closed (a no-op after Shutdown).
func (g *generation) close() {
	if g.srv != nil {
		g.srv.Close()
	}
	if err := g.site.access.Close(); err != nil {
		g.site.log.Warn("access log close", zap.Error(err))
	}
	g.site.access = nil
	if g.files != nil {
		g.files.Close()
		g.files = nil
	}
	if g.site.proxy != nil {
		g.site.proxy.Close()
		g.site.proxy = nil
	}
}

// hasRole reports whether inh holds a socket not yet taken with the role.
func hasRole(inh []inheritedSocket, role string) bool {
	for _, s := range inh {
		if s.FD >= 0 && s.Role == role {
			return true
		}
	}
	return false
}
