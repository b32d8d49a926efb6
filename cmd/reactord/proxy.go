package main

import (
	"github.com/reactord/reactord/cmd/reactord/internal/config"
	"github.com/reactord/reactord/cmd/reactord/internal/proxy"
)

// newProxy builds a generation's reverse proxy from cfg's routes; nil without routes. Its
// counters go to the process's proxy metrics, which outlive generations (a reload keeps the
// upstreams' series going).
func (d *daemon) newProxy(cfg config.Config) (*proxy.Proxy, error) {
	if len(cfg.Proxy) == 0 {
		return nil, nil
	}
	routes := make([]proxy.RouteConfig, len(cfg.Proxy))
	for i, r := range cfg.Proxy {
		routes[i] = routeConfig(r)
	}
	return proxy.New(proxy.Options{Routes: routes, Loops: cfg.Loops, Logger: d.log.Named("proxy"), Metrics: d.proxyMetrics})
}

// routeConfig maps a configured route to the proxy's, with the daemon's pipelining default.
func routeConfig(r config.ProxyRoute) proxy.RouteConfig {
	pipeline := r.Pipeline
	if pipeline == 0 {
		pipeline = proxy.DefaultPipeline
	}
	return proxy.RouteConfig{
		Host: r.Host, Prefix: r.Prefix, Upstreams: r.Upstreams, Balance: r.Balance,
		MaxFails: r.MaxFails, FailTimeout: r.FailTimeout, ConnectTimeout: r.ConnectTimeout,
		HeaderTimeout: r.HeaderTimeout, ReadTimeout: r.ReadTimeout, IdleTimeout: r.IdleTimeout,
		MaxConns: r.MaxConns, MaxIdle: r.MaxIdle, Pipeline: pipeline,
		HealthPath: r.HealthCheck, HealthInterval: r.HealthInterval, HealthTimeout: r.HealthTimeout,
	}
}
