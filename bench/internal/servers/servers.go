// Package servers holds every HTTP server the harness measures, behind one registry: our own
// stack (reactord, reactord-nethttp, reactor-raw: the reactor without the codec, and
// reactord-daemon: the daemon binary), the peers built
// into the bench module (nethttp, fasthttp, nbio, evio, gnet), the minimal epoll responder floor, and
// nginx when it is installed. Each answers every method on every path with 200 and the body
// "Hello, World!" (Content-Type text/plain, Content-Length 13).
//
// A server runs inside the calling process (Start) so that `bench serve` can put it in a child
// process of its own: the harness then pins that child to one CPU, sets its GOMAXPROCS, and
// reads its /proc counters without counting the load generator.
package servers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/reactord/reactord/bench/internal/tlsconf"
)

// Body is the response body every server sends.
const Body = "Hello, World!"

// Errors returned by Lookup and Start, matched with errors.Is.
var (
	// ErrUnknownServer is returned by Lookup for a name not in the registry.
	ErrUnknownServer = errors.New("servers: unknown server")
	// ErrUnavailable is returned by Start (and Server.Available) for a server that cannot run
	// here: nginx not installed, or a part of our stack that has not landed yet.
	ErrUnavailable = errors.New("servers: not available here")
	// ErrBadOptions is returned by Start for options it cannot honour.
	ErrBadOptions = errors.New("servers: bad options")
)

// Options configure one server start.
type Options struct {
	// Addr is the TCP address to listen on, host:port; port 0 picks a free port. Loopback
	// only is the harness's rule, not enforced here.
	Addr string
	// Poller is the I/O backend for servers built on our reactor, any name
	// reactor.WithPoller takes ("epoll", "uring" = the io_uring completion mode,
	// "uring-poll", "poll", "select"); empty means the reactor's default. Other servers
	// ignore it.
	Poller string
	// Loops is the number of event loops (or worker threads) where the server has the
	// notion; 0 means 1. GOMAXPROCS is set by the environment, not here.
	Loops int
	// Logger receives the server's own log lines; nil means a no-op logger.
	Logger *zap.Logger
	// Upstream is the host:port a reverse proxy (see Proxies) forwards every request to.
	// Required by proxies, ignored by the others.
	Upstream string
	// TLS, when set, makes the server speak HTTPS with a certificate of this kind
	// (tlsconf.ECDSA or tlsconf.RSA) and tlsconf.Server's configuration; only servers with
	// Server.TLS accept it.
	TLS string
}

func (o *Options) normalize() error {
	if o.Addr == "" {
		return fmt.Errorf("%w: empty address", ErrBadOptions)
	}
	if o.Loops < 0 || o.Loops > 1024 {
		return fmt.Errorf("%w: loops %d", ErrBadOptions, o.Loops)
	}
	if o.Loops == 0 {
		o.Loops = 1
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// needUpstream checks the option a proxy cannot do without.
func (o *Options) needUpstream(name string) error {
	if o.Upstream == "" {
		return fmt.Errorf("%s: %w: a reverse proxy needs -upstream", name, ErrBadOptions)
	}
	return nil
}

// Instance is a running server.
type Instance interface {
	// Addr is the address it accepts connections on, host:port.
	Addr() string
	// PID is the process whose CPU time and memory are the server's cost: this process for
	// in-process servers, the nginx process for nginx.
	PID() int
	// Close stops accepting, closes every connection and releases the server's resources.
	// It waits for the server's goroutines to end. A second call returns nil.
	Close() error
}

// Server is one entry of the registry.
type Server struct {
	// Name is what -server and -servers accept.
	Name string
	// Description is one line for -h and reports.
	Description string
	// UsesPoller says that the server runs on our poller package, so -pollers applies.
	UsesPoller bool
	// Proxy says that the server is a reverse proxy: it forwards to Options.Upstream and
	// is measured by the proxy subcommand, not http.
	Proxy bool
	// TLS says that the server can serve HTTPS (Options.TLS).
	TLS bool
	// TLSOnly says that the server differs from another only over TLS: runs without TLS
	// leave it out.
	TLSOnly bool
	// available reports why the server cannot run here, or nil.
	available func() error
	start     func(ctx context.Context, o Options) (Instance, error)
}

// Available returns nil if the server can run on this machine, or an error wrapping
// ErrUnavailable that says why not.
func (s Server) Available() error {
	if s.available == nil {
		return nil
	}
	return s.available()
}

// Start starts the server with o and returns once it accepts connections; a server in a
// process of its own (nginx) once it has answered a request, because its socket accepts
// connections before that process serves them.
func (s Server) Start(ctx context.Context, o Options) (Instance, error) {
	if err := s.Available(); err != nil {
		return nil, err
	}
	if err := o.normalize(); err != nil {
		return nil, err
	}
	if o.TLS != "" {
		if !s.TLS {
			return nil, fmt.Errorf("%s: %w: no TLS support", s.Name, ErrUnavailable)
		}
		if _, err := tlsconf.Certificate(o.TLS); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadOptions, err)
		}
	}
	return s.start(ctx, o)
}

// All returns the registry in the order reports list servers: our stack first, then the
// floor, then the peers.
func All() []Server {
	return []Server{
		reactordServer(),
		reactordTLSPoolServer(),
		reactordNetHTTPServer(),
		reactorRawServer(),
		daemonServer(),
		floorServer(),
		floorUringServer(),
		netHTTPServer(),
		fastHTTPServer(),
		nbioServer(),
		evioServer(),
		gnetServer(),
		nginxServer(),
	}
}

// Proxies returns the reverse proxies the proxy subcommand measures: our daemon's, nginx's
// proxy_pass, and Go's httputil.ReverseProxy.
func Proxies() []Server {
	return []Server{reactordProxyServer(), nginxProxyServer(), httputilProxyServer()}
}

// Names returns the names of All, WebSocket and Proxies, in order.
func Names() []string {
	var out []string
	for _, s := range append(append(All(), WebSocket()...), Proxies()...) {
		out = append(out, s.Name)
	}
	return out
}

// Lookup returns the server, proxy or helper upstream (blob) called name.
func Lookup(name string) (Server, error) {
	all := append(append(append(All(), WebSocket()...), Proxies()...), blobServer())
	i := slices.IndexFunc(all, func(s Server) bool { return s.Name == name })
	if i < 0 {
		return Server{}, fmt.Errorf("%w: %q (have %s)", ErrUnknownServer, name, strings.Join(append(Names(), WebSocketNames()...), ", "))
	}
	return all[i], nil
}

// tlsConfig returns the server configuration for o.TLS (checked by Start), or nil without TLS.
func (o *Options) tlsConfig() *tls.Config {
	if o.TLS == "" {
		return nil
	}
	cfg, _ := tlsconf.Server(o.TLS)
	return cfg
}
