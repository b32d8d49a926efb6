package servers

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

func fastHTTPServer() Server {
	return Server{
		Name:        "fasthttp",
		Description: "valyala/fasthttp (worker pool of goroutines, zero-alloc parser)",
		TLS:         true,
		start:       startFastHTTP,
	}
}

type fastHTTPInstance struct {
	srv  *fasthttp.Server
	ln   net.Listener
	done chan error
	once sync.Once
	err  error
}

func startFastHTTP(_ context.Context, o Options) (Instance, error) {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("fasthttp: %w", err)
	}
	body := []byte(Body)
	srv := &fasthttp.Server{
		// fasthttp has read the whole request body before the handler runs.
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain")
			ctx.SetBody(body)
		},
		Name:   "fasthttp",
		Logger: zapPrintf{o.Logger.Sugar()},
	}
	if cfg := o.tlsConfig(); cfg != nil {
		// fasthttp serves any net.Listener; its ServeTLS wraps the listener the same way.
		ln = tls.NewListener(ln, cfg)
	}
	in := &fastHTTPInstance{srv: srv, ln: ln, done: make(chan error, 1)}
	go func() { in.done <- srv.Serve(ln) }()
	return in, nil
}

func (f *fastHTTPInstance) Addr() string { return f.ln.Addr().String() }
func (f *fastHTTPInstance) PID() int     { return os.Getpid() }

func (f *fastHTTPInstance) Close() error {
	f.once.Do(func() {
		// Shutdown closes idle keep-alive connections and waits for busy ones; the deadline
		// keeps a stuck client from holding the harness.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.err = f.srv.ShutdownWithContext(ctx)
		<-f.done
	})
	return f.err
}
