package servers

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/reactord/reactord/reactor"
)

// reactor-raw runs our reactor package directly with the framing evio and gnet use here
// (CRLFCRLF plus Content-Length, canned reply): it measures the event loop without the HTTP
// codec. It is NOT the strict codec; reactord is.
func reactorRawServer() Server {
	return Server{
		Name:        "reactor-raw",
		Description: "our reactor with CRLFCRLF framing only (not the strict codec): the loop's own cost",
		UsesPoller:  true,
		TLS:         true,
		start:       startReactorRaw,
	}
}

// rawHandler answers each framed request with the canned response. Input a request is still
// arriving for stays with the connection (the reactor's unconsumed tail).
type rawHandler struct{}

func (rawHandler) OnOpen(*reactor.Conn) {}

func (rawHandler) OnData(c *reactor.Conn, in []byte) int {
	n, used, err := frameRequests(in)
	if err != nil {
		_ = c.Close()
		return len(in)
	}
	if n > 0 {
		// Write copies into the connection's output, flushed once per loop iteration.
		if _, err := c.Write(clock.responses(n)); err != nil {
			_ = c.Close()
			return len(in)
		}
	}
	return used
}

func (rawHandler) OnClose(*reactor.Conn, error) {}

type reactorInstance struct {
	srv     *reactor.Server
	addr    string
	release func()
	once    sync.Once
	err     error
}

func startReactorRaw(_ context.Context, o Options) (Instance, error) {
	return startReactor(rawHandler{}, o, true)
}

// startReactor runs h on a reactor.Server configured from o. usesClock says h answers from
// the canned responses, whose Date ticker then runs while the server does.
func startReactor(h reactor.Handler, o Options, usesClock bool) (Instance, error) {
	opts := []reactor.Option{reactor.WithLoops(o.Loops), reactor.WithLogger(o.Logger)}
	if o.Poller != "" {
		opts = append(opts, reactor.WithPoller(o.Poller))
	}
	if o.Loops > 1 {
		opts = append(opts, reactor.WithReusePort(true))
	}
	srv, err := reactor.NewServer(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("reactor: %w", err)
	}
	var lopts []reactor.ListenOption
	if cfg := o.tlsConfig(); cfg != nil {
		lopts = append(lopts, reactor.WithTLS(cfg))
	}
	a, err := srv.Listen("tcp", o.Addr, lopts...)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("reactor: %w", err)
	}
	if usesClock {
		clock.acquire()
	}
	if err := srv.Start(); err != nil {
		_ = srv.Close()
		if usesClock {
			clock.release()
		}
		return nil, fmt.Errorf("reactor: %w", err)
	}
	in := &reactorInstance{srv: srv, addr: a.String()}
	if usesClock {
		in.release = clock.release
	}
	return in, nil
}

func (r *reactorInstance) Addr() string { return r.addr }
func (r *reactorInstance) PID() int     { return os.Getpid() }

func (r *reactorInstance) Close() error {
	r.once.Do(func() {
		r.err = r.srv.Close()
		if r.release != nil {
			r.release()
		}
	})
	return r.err
}
