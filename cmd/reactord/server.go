package main

import (
	"go.uber.org/zap"

	"github.com/reactord/reactord/cmd/reactord/internal/config"
	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// maxRequestLine is the codec's ceiling for a request-line; -max-header-bytes bounds both
// the request-line (up to this) and the header section.
const maxRequestLine = 1 << 20

// Admin listener: one loop is plenty for probes and scrapes, and a cap keeps a flood on it
// from costing the public listeners descriptors.
const (
	adminLoops    = 1
	adminMaxConns = 256
)

// newServer builds an HTTP server (the codec on a reactor server) from the configuration,
// serving s. Nothing is bound yet. admin selects the admin listener's sizing (one loop, a
// connection cap, no observer) instead of the public one's. admit is the public listeners'
// per-address limit (-max-conns-per-ip), nil for none; the admin listener has none (probes
// and scrapes come from a few addresses, and its cap already bounds them).
func newServer(cfg config.Config, s *responder, log *zap.Logger, admin bool, admit reactor.Admitter) (*codec.Server, error) {
	ropts := []reactor.Option{
		reactor.WithPoller(cfg.Poller),
		reactor.WithWatermarks(int(cfg.OutputBuffer), 0),
		reactor.WithLogger(log.Named("reactor")),
	}
	switch {
	case admin:
		ropts = append(ropts, reactor.WithLoops(adminLoops), reactor.WithMaxConns(adminMaxConns))
	default:
		if admit != nil {
			// Asked at accept, before the connection counts against the cap: one
			// address cannot fill the table that shedding guards.
			ropts = append(ropts, reactor.WithAdmitter(admit))
		}
		// Shedding: at the descriptor limit (less a reserve for the files it sends) or
		// -max-conns, close the connections that made the least progress (slow or silent
		// clients inside their first request head) rather than stop accepting everyone.
		ropts = append(ropts, reactor.WithLoops(cfg.Loops), reactor.WithMaxConns(cfg.MaxConns), reactor.WithShedding(true))
		if cfg.ReusePort {
			// One listening socket per loop with SO_REUSEPORT: the kernel spreads connections
			// over the loops (no hand-off between loops), and other reactord processes
			// started with -reuseport can bind the same port.
			ropts = append(ropts, reactor.WithReusePort(true), reactor.WithLoadBalancing(reactor.PerLoopListeners))
		}
	}
	limits := codec.Limits{
		MaxRequestLineBytes: int(min(cfg.MaxHeaderBytes, maxRequestLine)),
		MaxHeaderBytes:      int(cfg.MaxHeaderBytes),
		MaxBodyBytes:        cfg.MaxBodyBytes,
	}
	opts := []codec.Option{
		codec.WithLimits(limits),
		codec.WithReadHeaderTimeout(cfg.HeaderTimeout),
		codec.WithReadTimeout(cfg.ReadTimeout),
		codec.WithIdleTimeout(cfg.IdleTimeout),
		codec.WithServerName("reactord"),
		codec.WithLogger(log.Named("http")),
		codec.WithReactorOptions(ropts...),
	}
	if !admin {
		// Probes and scrapes on the admin listener are not counted as traffic.
		opts = append(opts, codec.WithObserver(s.observe))
	}
	return codec.NewServer(wireHandler{s}, opts...)
}
