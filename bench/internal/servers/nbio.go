package servers

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
)

// nbio runs the same net/http handler as nethttp and reactord-nethttp (helloHandler) on
// lesismal/nbio's nbhttp engine: an event-loop server that, like our adapter, runs net/http
// handlers on a goroutine pool.
func nbioServer() Server {
	return Server{
		Name:        "nbio",
		Description: "lesismal/nbio nbhttp (event loop + goroutine pool) running the net/http handler",
		start:       startNbio,
	}
}

type nbioInstance struct {
	eng  *nbhttp.Engine
	addr string
	once sync.Once
	err  error
}

func startNbio(_ context.Context, o Options) (Instance, error) {
	// nbio logs to stdout by default, which is the harness's control channel: errors only,
	// to stderr.
	logging.Output = os.Stderr
	logging.SetLevel(logging.LevelError)
	var mu sync.Mutex
	var bound string
	eng := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{o.Addr},
		NPoller: o.Loops,
		Handler: helloHandler(),
		// The engine opens its listener itself: note the address it got (port 0 resolved).
		Listen: func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				mu.Lock()
				bound = ln.Addr().String()
				mu.Unlock()
			}
			return ln, err
		},
	})
	if err := eng.Start(); err != nil {
		return nil, fmt.Errorf("nbio: %w", err)
	}
	mu.Lock()
	addr := bound
	mu.Unlock()
	if addr == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(ctx)
		return nil, fmt.Errorf("nbio: listener address unknown")
	}
	return &nbioInstance{eng: eng, addr: addr}, nil
}

func (n *nbioInstance) Addr() string { return n.addr }
func (n *nbioInstance) PID() int     { return os.Getpid() }

func (n *nbioInstance) Close() error {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.err = n.eng.Shutdown(ctx)
	})
	return n.err
}
