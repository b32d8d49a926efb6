package servers

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/reactord/reactord/bench/internal/loadgen"
)

// errWrongAnswer means a server answered the readiness request, but not with the harness's
// response: retrying cannot help, so waitServing gives up at once.
var errWrongAnswer = errors.New("answered the readiness request wrongly")

// waitServing returns once the server at addr answers GET / with the harness's response (200,
// Body) — or with a 200 whose head and body fill more than the probe reads (a proxy in front
// of the blob upstream) — or fails when the process ends (a value on exited, which it puts back for the
// caller's Close), ctx ends, or limit passes.
//
// A successful connect is not readiness. The kernel completes the handshake as soon as the
// socket is listening, and nginx calls listen() while it reads its configuration, before its
// event loop runs: in between it allocates and fills worker_connections connection and event
// structures (tens of MiB), which takes most of a second on a loaded 2-core machine, longer
// once the harness pins it to one CPU. A harness that trusted connect started its measured
// window during that start-up and reported a few hundred requests per second, or none.
func waitServing(ctx context.Context, addr string, exited chan error, limit time.Duration) error {
	return waitServingTLS(ctx, addr, nil, exited, limit)
}

// waitServingTLS is waitServing over TLS with cfg (a server started with Options.TLS answers
// plain HTTP with 400, which waitServing takes for a wrong answer); nil cfg is plain HTTP.
func waitServingTLS(ctx context.Context, addr string, cfg *tls.Config, exited chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	req := loadgen.DefaultRequest(addr)
	for {
		err := probeHTTP(ctx, addr, cfg, req, deadline)
		if err == nil || errors.Is(err, errWrongAnswer) {
			return err
		}
		select {
		case e := <-exited:
			exited <- e // leave it for Close
			return fmt.Errorf("exited before serving: %v", e)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // not listening yet: dial again
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving on %s after %v: %w", addr, limit, err)
		}
	}
}

// probeHTTP sends req on a new connection to addr and reads one response, waiting for it until
// deadline (or ctx's end): a server still starting up answers when its event loop first runs.
func probeHTTP(ctx context.Context, addr string, cfg *tls.Config, req []byte, deadline time.Time) error {
	d := net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if cfg != nil {
		c = tls.Client(c, cfg) // the handshake runs with the first Write, under the deadline
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			// A 200 too large for the probe: a proxy in front of the blob upstream of the
			// proxy memory run. It is serving; only the harness's small body is checked.
			if bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) && bytes.Contains(buf, []byte("\r\n\r\n")) {
				return nil
			}
			return fmt.Errorf("%w: response longer than %d bytes", errWrongAnswer, cap(buf))
		}
		n, rerr := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		r, used, perr := loadgen.ParseResponse(buf)
		if perr != nil {
			return fmt.Errorf("%w: %w", errWrongAnswer, perr)
		}
		if used > 0 {
			if r.Status != 200 || string(r.Body) != Body {
				return fmt.Errorf("%w: status %d, body %q", errWrongAnswer, r.Status, r.Body)
			}
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
