package servers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

func netHTTPServer() Server {
	return Server{
		Name:        "nethttp",
		Description: "Go's net/http server (goroutine per connection)",
		TLS:         true,
		start:       startNetHTTP,
	}
}

// helloHandler is the net/http handler every net/http-shaped server in the harness runs
// (nethttp itself and reactord-nethttp): it drains the request body, then answers 200.
func helloHandler() http.Handler {
	body := []byte(Body)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"13"}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

type netHTTPInstance struct {
	srv  *http.Server
	addr string
	done chan error
	once sync.Once
	err  error
}

func startNetHTTP(_ context.Context, o Options) (Instance, error) {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("nethttp: %w", err)
	}
	errLog, err := zap.NewStdLogAt(o.Logger, zap.DebugLevel)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("nethttp: %w", err)
	}
	srv := &http.Server{
		Handler:           helloHandler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          errLog,
	}
	in := &netHTTPInstance{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	if cfg := o.tlsConfig(); cfg != nil {
		// What ServeTLS does, with the harness's configuration (HTTP/1.1 only by ALPN).
		ln = tls.NewListener(ln, cfg)
	}
	go func() { in.done <- srv.Serve(ln) }()
	return in, nil
}

func (n *netHTTPInstance) Addr() string { return n.addr }
func (n *netHTTPInstance) PID() int     { return os.Getpid() }

func (n *netHTTPInstance) Close() error {
	n.once.Do(func() {
		n.err = n.srv.Close()
		if err := <-n.done; !errors.Is(err, http.ErrServerClosed) && n.err == nil {
			n.err = err
		}
	})
	return n.err
}
