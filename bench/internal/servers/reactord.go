package servers

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"

	httpcodec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// Our stack: reactor + the strict codec/http parser, answering through its native handler
// (reactord) or running a net/http handler through its adapter (reactord-nethttp). Both honour
// Options.Poller and Options.Loops through the reactor's options.

func reactordServer() Server {
	return Server{
		Name:        "reactord",
		Description: "our stack: reactor + strict codec/http parser + native handler",
		UsesPoller:  true,
		TLS:         true,
		start: func(_ context.Context, o Options) (Instance, error) {
			return startCodec(httpcodec.HandlerFunc(nativeHello), o)
		},
	}
}

// reactordTLSPoolServer is reactord with its TLS handshakes on the reactor's pool of
// goroutines instead of coroutines on the loop (reactor.WithTLSHandshakeOnLoop(false)): the
// two handshake designs side by side. Without -tls it is reactord.
func reactordTLSPoolServer() Server {
	return Server{
		Name:        "reactord-tlspool",
		Description: "reactord with TLS handshakes on a goroutine pool instead of the loop (only differs with -tls)",
		UsesPoller:  true,
		TLS:         true,
		TLSOnly:     true,
		start: func(_ context.Context, o Options) (Instance, error) {
			return startCodec(httpcodec.HandlerFunc(nativeHello), o, reactor.WithTLSHandshakeOnLoop(false))
		},
	}
}

func reactordNetHTTPServer() Server {
	return Server{
		Name:        "reactord-nethttp",
		Description: "our stack: reactor + codec/http net/http adapter running a net/http handler",
		UsesPoller:  true,
		TLS:         true,
		start: func(_ context.Context, o Options) (Instance, error) {
			return startCodec(httpcodec.Adapt(helloHandler()), o)
		},
	}
}

var helloBody = []byte(Body)

// nativeHello is the native handler: the codec has already read the whole request body (it is
// r.Body()), so there is nothing to drain. Header values are constants: nothing allocates.
func nativeHello(w *httpcodec.ResponseWriter, _ *httpcodec.Request) {
	_ = w.Set("Content-Type", "text/plain")
	_ = w.SetContentLength(int64(len(helloBody)))
	_, _ = w.Write(helloBody)
}

type codecInstance struct {
	srv  *httpcodec.Server
	addr string
	once sync.Once
	err  error
}

func startCodec(h httpcodec.Handler, o Options, extra ...reactor.Option) (Instance, error) {
	ropts := append([]reactor.Option{reactor.WithLoops(o.Loops)}, extra...)
	if o.Poller != "" {
		ropts = append(ropts, reactor.WithPoller(o.Poller))
	}
	if o.Loops > 1 {
		ropts = append(ropts, reactor.WithReusePort(true))
	}
	srv, err := httpcodec.NewServer(h, httpcodec.WithLogger(o.Logger), httpcodec.WithReactorOptions(ropts...))
	if err != nil {
		return nil, fmt.Errorf("reactord: %w", err)
	}
	a, err := listenCodec(srv, o)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("reactord: %w", err)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("reactord: %w", err)
	}
	return &codecInstance{srv: srv, addr: a.String()}, nil
}

func (c *codecInstance) Addr() string { return c.addr }
func (c *codecInstance) PID() int     { return os.Getpid() }

func (c *codecInstance) Close() error {
	c.once.Do(func() { c.err = c.srv.Close() })
	return c.err
}

// listenCodec opens the codec's listener, with TLS on the reactor's socket when asked.
func listenCodec(srv *httpcodec.Server, o Options) (net.Addr, error) {
	if cfg := o.tlsConfig(); cfg != nil {
		return srv.Reactor().Listen("tcp", o.Addr, reactor.WithTLS(cfg))
	}
	return srv.Listen("tcp", o.Addr)
}
