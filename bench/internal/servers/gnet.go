package servers

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

func gnetServer() Server {
	return Server{
		Name:        "gnet",
		Description: "panjf2000/gnet/v2 event loop (CRLFCRLF + Content-Length framing, canned reply)",
		start:       startGnet,
	}
}

type gnetHandler struct {
	gnet.BuiltinEventEngine
	eng   gnet.Engine
	ready chan struct{}
}

func (h *gnetHandler) OnBoot(eng gnet.Engine) gnet.Action {
	h.eng = eng
	close(h.ready)
	return gnet.None
}

func (h *gnetHandler) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Peek(-1)
	if err != nil {
		return gnet.Close
	}
	n, used, err := frameRequests(buf)
	if err != nil {
		return gnet.Close
	}
	if _, err := c.Discard(used); err != nil {
		return gnet.Close
	}
	if n > 0 {
		// One Write per batch: gnet writes straight to the socket when its output buffer is
		// empty and keeps the rest for the next writable event.
		if _, err := c.Write(clock.responses(n)); err != nil {
			return gnet.Close
		}
	}
	return gnet.None
}

type gnetInstance struct {
	addr string
	h    *gnetHandler
	done chan error
	once sync.Once
	err  error
}

func startGnet(ctx context.Context, o Options) (Instance, error) {
	addr, err := concretePort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("gnet: %w", err)
	}
	h := &gnetHandler{ready: make(chan struct{})}
	in := &gnetInstance{addr: addr, h: h, done: make(chan error, 1)}
	clock.acquire()
	go func() {
		in.done <- gnet.Run(h, "tcp://"+addr,
			gnet.WithMulticore(false),
			gnet.WithNumEventLoop(o.Loops),
			gnet.WithReusePort(o.Loops > 1),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(zapPrintf{o.Logger.Sugar()}))
	}()
	select {
	case <-h.ready:
		return in, nil
	case err := <-in.done:
		clock.release()
		return nil, fmt.Errorf("gnet: %w", err)
	case <-ctx.Done():
		clock.release()
		return nil, ctx.Err()
	}
}

func (g *gnetInstance) Addr() string { return g.addr }
func (g *gnetInstance) PID() int     { return os.Getpid() }

func (g *gnetInstance) Close() error {
	g.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.err = g.h.eng.Stop(ctx)
		if err := <-g.done; g.err == nil {
			g.err = err
		}
		clock.release()
	})
	return g.err
}

// concretePort turns a port-0 address into one with a free port, for servers that cannot say
// which port they were given (gnet, nginx). Another process could take the port in between;
// on loopback in a benchmark run that race is accepted.
func concretePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	p := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}
