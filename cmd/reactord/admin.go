package main

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/reactord/reactord/cmd/reactord/internal/config"
	codec "github.com/reactord/reactord/codec/http"
)

// adminServer is the -admin-listen server: /healthz, /readyz, /livez and /metrics, on a loop
// of its own, apart from the public listeners. Probes and scrapes then neither compete with
// traffic for a loop nor need a public address, and the public listeners serve only content.
// It lives as long as the process (a reload does not replace it), and its socket is passed to
// the new process on an upgrade like the public ones.
type adminServer struct {
	site   responder
	srv    *codec.Server
	groups []socketGroup
	served chan error
}

// newAdmin builds the admin server on the admin sockets among inh (from systemd or a
// previous process), or on cfg.AdminListen. It returns nil, nil when neither asks for one.
func (d *daemon) newAdmin(cfg config.Config, inh []inheritedSocket) (_ *adminServer, err error) {
	var specs []string
	if cfg.AdminListen != "" {
		specs = []string{cfg.AdminListen}
	}
	want := len(specs) > 0
	for _, s := range inh {
		want = want || s.FD >= 0 && s.Role == roleAdmin
	}
	if !want {
		return nil, nil
	}
	a := &adminServer{served: make(chan error, 1)}
	a.site.log = d.log
	a.site.app = &app{metrics: d.metrics, status: &d.status, noContent: true}
	if a.srv, err = newServer(cfg, &a.site, d.log.Named("admin"), true, nil); err != nil {
		return nil, &config.Error{Key: "admin-listen", Reason: err.Error()}
	}
	if a.groups, err = bindRole(a.srv.Reactor(), roleAdmin, specs, inh, d.log); err != nil {
		a.srv.Close()
		return nil, err
	}
	if len(a.groups) == 0 {
		a.srv.Close()
		return nil, fmt.Errorf("admin-listen: %w", errNoSockets)
	}
	return a, nil
}

func (a *adminServer) start() error {
	if err := a.srv.Start(); err != nil {
		return err
	}
	go func() { a.served <- a.srv.Serve() }()
	return nil
}

// stop shuts the admin server down within ctx, last of all, so probes are answered (with
// 503 on /readyz) while the public listeners drain. release is as for generation.retire.
func (a *adminServer) stop(ctx context.Context, release bool) {
	if a == nil {
		return
	}
	if release {
		if err := a.srv.Reactor().ReleaseListeners(); err != nil && !errors.Is(err, codec.ErrServerClosed) {
			a.site.log.Warn("release admin listener", zap.Error(err))
		}
	}
	a.site.closing.Store(true)
	if err := a.srv.Shutdown(ctx); err != nil {
		a.site.log.Debug("admin shutdown", zap.Error(err))
	}
	<-a.served
}
