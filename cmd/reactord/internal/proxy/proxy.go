// Package proxy is the daemon's reverse proxy: routes by Host and path prefix to groups of
// upstreams (TCP or Unix), balanced round-robin or by least connections, with passive health
// (ejection after consecutive failures, re-admission after a cool-down) and optional active
// checks, over codec/http's Client — keep-alive connections pooled per event loop, so a
// request is forwarded and answered on the loop that read it, with no thread hand-off.
//
// Forwarding follows RFC 9110 §7.6: connection-specific fields (and those Connection names)
// are removed in both directions, X-Forwarded-For/-Proto/-Host and Via are added, and every
// message is re-framed, so no framing a peer might read differently reaches the other side.
package proxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// Defaults of a route's settings.
const (
	DefaultMaxFails       = 3
	DefaultFailTimeout    = 10 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultHeaderTimeout  = 60 * time.Second
	DefaultReadTimeout    = 60 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultHealthInterval = 5 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	// DefaultPipeline is the daemon's pipeline setting for a route that does not set one: a
	// client's pipelined batch of idempotent requests goes to one upstream connection in one
	// write, as the client sent it (it chose to pipeline; RFC 9112 §9.3.2 requires servers to
	// answer in order). A route with pipeline = 1 sends one request at a time, as nginx does.
	DefaultPipeline = 16
)

// RouteConfig is one route: which requests (Host, Prefix) go to which upstreams, and how.
// Zero values take the defaults above; negative ones are refused.
type RouteConfig struct {
	// Host limits the route to requests for this host (case-insensitive; a port is ignored).
	// Empty: any host.
	Host string
	// Prefix is the path prefix the route takes ("/api/", or "/" for everything).
	Prefix string
	// Upstreams lists "host:port" or "unix:/path" addresses.
	Upstreams []string
	// Balance is "round-robin" (default) or "least-conn".
	Balance string
	// MaxFails is the number of consecutive failures (connect error, timeout, reset,
	// malformed response) that ejects an upstream; negative disables passive health.
	MaxFails int
	// FailTimeout is how long an ejected upstream stays out before a request tries it again.
	FailTimeout time.Duration
	// ConnectTimeout bounds connecting to an upstream (504 when it runs out).
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for a response head once the request is sent (504).
	HeaderTimeout time.Duration
	// ReadTimeout bounds the silence of an upstream while its response is received.
	ReadTimeout time.Duration
	// IdleTimeout closes pooled keep-alive connections idle that long.
	IdleTimeout time.Duration
	// MaxConns caps the connections each event loop opens to each upstream; requests wait
	// for a free one beyond it. 0: no cap.
	MaxConns int
	// MaxIdle caps the idle keep-alive connections each loop keeps per upstream (0: the
	// client's default).
	MaxIdle int
	// Pipeline lets up to this many idempotent requests of one client batch share an upstream
	// connection (HTTP/1.1 pipelining); 0 or 1 sends one request at a time, as nginx does.
	Pipeline int
	// HealthPath, when set, turns on active checks: a GET of it to every upstream each
	// HealthInterval; a status other than 2xx/3xx, or none within HealthTimeout, takes the
	// upstream out until a check passes.
	HealthPath     string
	HealthInterval time.Duration
	HealthTimeout  time.Duration
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("proxy: invalid route")

// Options configures New.
type Options struct {
	Routes []RouteConfig
	// Loops is the number of event loops that will forward requests.
	Loops int
	// Logger receives rare events (an upstream ejected or re-admitted); nil: none.
	Logger *zap.Logger
	// Metrics are the instruments to count in, shared with other proxies of the process;
	// nil: a set of the proxy's own (Collectors returns it).
	Metrics *Metrics
}

// Proxy holds the routes, groups and upstream clients. Its methods are safe for concurrent
// use; Serve runs on a loop goroutine.
type Proxy struct {
	table   *Table
	groups  []*Group
	metrics *metricSet
	log     *zap.Logger
	checks  []*healthCheck
	batches []batch // per loop: the last request forwarded (forward.go)
}

// New builds the proxy. It opens nothing: connections are made on first use, by the loop
// that forwards a request. Errors wrap ErrConfig and name the route.
func New(o Options) (*Proxy, error) {
	if o.Loops < 1 {
		return nil, fmt.Errorf("%w: loops %d", ErrConfig, o.Loops)
	}
	p := &Proxy{metrics: o.Metrics, log: o.Logger, batches: make([]batch, o.Loops)}
	if p.metrics == nil {
		p.metrics = newMetricSet()
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	var routes []route
	seen := map[string]bool{}
	for i, rc := range o.Routes {
		g, err := p.newGroup(rc, o.Loops)
		if err != nil {
			return nil, fmt.Errorf("%w: route %d (%s%s): %v", ErrConfig, i+1, rc.Host, rc.Prefix, err)
		}
		key := normalizeHost(rc.Host) + " " + rc.Prefix
		if seen[key] {
			return nil, fmt.Errorf("%w: route %d: host %q and prefix %q given twice", ErrConfig, i+1, rc.Host, rc.Prefix)
		}
		seen[key] = true
		p.groups = append(p.groups, g)
		routes = append(routes, route{host: normalizeHost(rc.Host), prefix: rc.Prefix, group: g})
	}
	p.table = newTable(routes)
	return p, nil
}

func (p *Proxy) newGroup(rc RouteConfig, loops int) (*Group, error) {
	if rc.Prefix == "" || rc.Prefix[0] != '/' {
		return nil, fmt.Errorf("prefix %q must start with /", rc.Prefix)
	}
	if len(rc.Upstreams) == 0 {
		return nil, errors.New("no upstream")
	}
	for _, d := range []time.Duration{rc.FailTimeout, rc.ConnectTimeout, rc.HeaderTimeout, rc.ReadTimeout, rc.IdleTimeout, rc.HealthInterval, rc.HealthTimeout} {
		if d < 0 {
			return nil, errors.New("negative timeout")
		}
	}
	if rc.MaxConns < 0 || rc.MaxIdle < 0 || rc.Pipeline < 0 {
		return nil, errors.New("negative max-conns, max-idle or pipeline")
	}
	pol, err := ParsePolicy(rc.Balance)
	if err != nil {
		return nil, err
	}
	g := &Group{
		name:        rc.Host + rc.Prefix,
		policy:      pol,
		maxFails:    rc.MaxFails,
		failTimeout: orDefault(rc.FailTimeout, DefaultFailTimeout),
		turns:       make([]paddedCounter, loops),
	}
	if g.maxFails == 0 {
		g.maxFails = DefaultMaxFails
	}
	ccfg := codec.ClientConfig{
		MaxConns:      rc.MaxConns,
		MaxIdle:       rc.MaxIdle,
		IdleTimeout:   orDefault(rc.IdleTimeout, DefaultIdleTimeout),
		DialTimeout:   orDefault(rc.ConnectTimeout, DefaultConnectTimeout),
		HeaderTimeout: orDefault(rc.HeaderTimeout, DefaultHeaderTimeout),
		ReadTimeout:   orDefault(rc.ReadTimeout, DefaultReadTimeout),
		MaxPipeline:   rc.Pipeline,
		// No limit on a streamed response body; heads as the codec's defaults.
	}
	dup := map[string]bool{}
	for _, a := range rc.Upstreams {
		if dup[a] {
			return nil, fmt.Errorf("upstream %q given twice", a)
		}
		dup[a] = true
		network, address, err := ParseUpstream(a)
		if err != nil {
			return nil, err
		}
		c, err := codec.NewClient(network, address, ccfg)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %v", a, err)
		}
		u := &Upstream{Name: a, client: c, group: g}
		u.m = p.metrics.forUpstream(u)
		g.ups = append(g.ups, u)
	}
	if rc.HealthPath != "" {
		if rc.HealthPath[0] != '/' {
			return nil, fmt.Errorf("health-check path %q must start with /", rc.HealthPath)
		}
		hc := &healthCheck{
			path:     rc.HealthPath,
			interval: orDefault(rc.HealthInterval, DefaultHealthInterval),
			timeout:  orDefault(rc.HealthTimeout, DefaultHealthTimeout),
		}
		for _, u := range g.ups {
			network, address, _ := ParseUpstream(u.Name)
			c, err := codec.NewClient(network, address, codec.ClientConfig{
				MaxIdle: 1, DialTimeout: hc.timeout, HeaderTimeout: hc.timeout, ReadTimeout: hc.timeout, NoRetry: true,
			})
			if err != nil {
				return nil, err
			}
			hc.clients = append(hc.clients, c)
		}
		g.hc = hc
		p.checks = append(p.checks, hc)
	}
	return g, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Collectors returns the proxy's Prometheus collectors, for the daemon's registry.
func (p *Proxy) Collectors() []prometheus.Collector { return p.metrics.collectors() }

// Table returns the routing table.
func (p *Proxy) Table() *Table { return p.table }

// Groups returns the groups, in configuration order.
func (p *Proxy) Groups() []*Group { return p.groups }

// Start begins the active health checks, on the server's first loop. Call it once the
// server has started.
func (p *Proxy) Start(s *reactor.Server) error {
	loops := s.Loops()
	if len(loops) == 0 {
		return reactor.ErrNotRunning
	}
	for _, g := range p.groups {
		if g.hc == nil {
			continue
		}
		g, l := g, loops[0]
		if err := l.Post(func() { g.hc.start(g, l) }); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every upstream client: idle connections go, those in use close after their
// response. Any goroutine.
func (p *Proxy) Close() {
	for _, g := range p.groups {
		for _, u := range g.ups {
			u.client.Close()
		}
		p.metrics.gauges.remove(g.ups)
	}
	for _, hc := range p.checks {
		hc.stop()
	}
}
