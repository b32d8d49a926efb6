package main

import (
	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// maxRequestLine is the codec's ceiling for a request-line; -max-header-bytes bounds both
// the request-line (up to this) and the header section.
const maxRequestLine = 1 << 20

// newServer builds the HTTP server (the codec on a reactor server) from the configuration.
// Nothing is bound yet.
func (d *daemon) newServer() (*codec.Server, error) {
	ropts := []reactor.Option{
		reactor.WithLoops(d.cfg.Loops),
		reactor.WithPoller(d.cfg.Poller),
		reactor.WithMaxConns(d.cfg.MaxConns),
		reactor.WithLogger(d.log.Named("reactor")),
	}
	if d.cfg.ReusePort {
		// One listening socket per loop with SO_REUSEPORT: the kernel spreads connections
		// over the loops (no hand-off between loops), and other reactord processes started
		// with -reuseport can bind the same port.
		ropts = append(ropts, reactor.WithReusePort(true), reactor.WithLoadBalancing(reactor.PerLoopListeners))
	}
	limits := codec.Limits{
		MaxRequestLineBytes: int(min(d.cfg.MaxHeaderBytes, maxRequestLine)),
		MaxHeaderBytes:      int(d.cfg.MaxHeaderBytes),
		MaxBodyBytes:        d.cfg.MaxBodyBytes,
	}
	return codec.NewServer(codec.HandlerFunc(d.handle),
		codec.WithLimits(limits),
		codec.WithReadHeaderTimeout(d.cfg.HeaderTimeout),
		codec.WithReadTimeout(d.cfg.ReadTimeout),
		codec.WithIdleTimeout(d.cfg.IdleTimeout),
		codec.WithServerName("reactord"),
		codec.WithObserver(d.observe),
		codec.WithLogger(d.log.Named("http")),
		codec.WithReactorOptions(ropts...),
	)
}
