package http

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reactord/reactord/reactor"
)

// Server is an HTTP/1.1 server on a reactor.Server: the codec parses each connection's input
// on its loop, calls the handler, and appends the responses to the connection's output. Its
// methods are safe from any goroutine, except Shutdown, which must not run on a loop goroutine.
type Server struct {
	cfg  config
	h    Handler
	ad   *Adapter // h, when it is an adapted net/http handler
	rs   *reactor.Server
	pool *workerPool
	disp dispatcher // inline, or the worker pool's (pooled)

	draining atomic.Bool

	mu    sync.Mutex
	lstab atomic.Pointer[[]*loopState] // per-loop state, indexed by Loop.Index (see loopStateOf)
}

// NewServer returns a server that answers requests with h, configured by opts. It opens
// nothing yet: call Listen, then Start or Serve. If h is an *Adapter (see Adapt), its net/http
// handler runs on a worker pool of WithWorkers goroutines, started by Start. Errors:
// ErrInvalidArgument for a nil h, ErrInvalidOption (joined, one per bad option), and the
// reactor's errors for bad reactor options.
func NewServer(h Handler, opts ...Option) (*Server, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidArgument)
	}
	if f, ok := h.(HandlerFunc); ok && f == nil {
		return nil, fmt.Errorf("%w: nil HandlerFunc", ErrInvalidArgument)
	}
	s := &Server{cfg: defaultConfig(), h: h}
	for _, o := range opts {
		if o == nil {
			s.cfg.fail("nil Option")
			continue
		}
		o(&s.cfg)
	}
	if err := errors.Join(s.cfg.errs...); err != nil {
		return nil, err
	}
	if ad, ok := h.(*Adapter); ok {
		if ad == nil || ad.h == nil {
			return nil, fmt.Errorf("%w: nil Adapter", ErrInvalidArgument)
		}
		s.ad = ad
		s.pool = newWorkerPool(s, s.cfg.workers, s.cfg.maxQueue)
		s.disp = &pooled{s: s, pool: s.pool}
	} else {
		s.disp = inline{}
	}
	ropts := append([]reactor.Option{reactor.WithLogger(s.cfg.logger)}, s.cfg.reactorOpts...)
	rs, err := reactor.NewServer(connHandler{s}, ropts...)
	if err != nil {
		return nil, err
	}
	s.rs = rs
	return s, nil
}

// ListenAndServe is NewServer, Listen("tcp", addr) and Serve in one call. It returns the first
// error, or ErrServerClosed once the server was shut down from elsewhere (which needs the
// *Server: use NewServer for that).
func ListenAndServe(addr string, h Handler, opts ...Option) error {
	s, err := NewServer(h, opts...)
	if err != nil {
		return err
	}
	if _, err := s.Listen("tcp", addr); err != nil {
		s.Close()
		return err
	}
	return s.Serve()
}

// ErrServerClosed is returned by Serve after Shutdown or Close (it is reactor.ErrServerClosed).
var ErrServerClosed = reactor.ErrServerClosed

// Listen opens a listening socket ("tcp", "tcp4", "tcp6" or "unix") and returns its bound
// address (":0" resolved). It may be called before or after Start. Errors are the reactor's
// (bad address, EADDRINUSE, ErrServerClosed, ...).
func (s *Server) Listen(network, addr string) (net.Addr, error) { return s.rs.Listen(network, addr) }

// Start starts the loops and returns once they serve (the adapter's workers start on demand).
// Errors: reactor.ErrServerStarted, ErrServerClosed, or the poller's.
func (s *Server) Start() error {
	err := s.rs.Start()
	if err != nil && !errors.Is(err, reactor.ErrServerStarted) && s.pool != nil {
		s.pool.stop(context.Background())
	}
	return err
}

// Serve starts the server if needed and blocks until Shutdown or Close; it returns
// ErrServerClosed then, or the error that stopped a loop.
func (s *Server) Serve() error {
	if err := s.Start(); err != nil && !errors.Is(err, reactor.ErrServerStarted) {
		return err
	}
	return s.rs.Serve()
}

// Shutdown stops accepting and lets in-flight requests finish: a connection in the middle of a
// request, or with requests running on the worker pool, gets its responses (the last one says
// "Connection: close") and is closed after them; idle keep-alive connections are closed at
// once. It returns once every connection is closed and the worker pool has stopped, or when
// ctx is done: then the remaining connections are closed at once (request contexts are
// cancelled), and it returns ctx.Err() without waiting for handlers that ignore their context.
// It must not be called from a loop goroutine (reactor.ErrCalledOnLoop), nor from one of the
// server's adapter handlers (ErrCalledFromHandler: it would wait for its own request; call it
// with go, or use Close).
func (s *Server) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidArgument)
	}
	if s.pool != nil && s.pool.isWorker() {
		return ErrCalledFromHandler
	}
	s.draining.Store(true)
	// Connections with requests on the worker pool are held (Conn.Hold): the reactor's
	// Shutdown waits for them like for any busy connection.
	err := s.rs.Shutdown(ctx)
	if s.pool != nil {
		if perr := s.pool.stop(ctx); err == nil {
			err = perr
		}
	}
	return err
}

// Close closes every connection and stops the loops at once (handlers' request contexts are
// cancelled), then stops the worker pool, waiting for running handlers to return. Called from
// one of the server's adapter handlers (an admin "/quit" endpoint), it does not wait for that
// handler, which is still running: it returns once the others have returned. Handlers that
// hijacked their connection are not waited for (as with net/http).
func (s *Server) Close() error {
	s.draining.Store(true)
	err := s.rs.Close()
	if s.pool != nil {
		s.pool.stop(context.Background())
	}
	return err
}

// Addrs returns the bound addresses of the listeners, in the order they were opened.
func (s *Server) Addrs() []net.Addr { return s.rs.Addrs() }

// Reactor returns the underlying reactor.Server (for its Loops and PollerName).
func (s *Server) Reactor() *reactor.Server { return s.rs }

// Stats is a snapshot of the server's counters.
type Stats struct {
	reactor.Stats
	// Requests counts responses completed (answered by a handler or rejected by the codec).
	Requests uint64
	// Rejected counts requests answered by the codec itself: parse errors and 408 timeouts.
	Rejected uint64
	// Adapter worker pool (all zero for a native handler). Workers is the number of worker
	// goroutines alive now (they start on demand up to WorkersMax and retire when idle);
	// Running the workers handling requests; Queued the entries waiting for a worker (the queue
	// depth; the pipelined requests of a connection that arrive in one read are one entry, see
	// WithMaxQueue). QueueWaitTotal is the time every dequeued entry spent waiting and Dequeued
	// how many did (their ratio is the mean wait: export both as counters); Shed counts entries
	// refused with 503 because WithMaxQueue entries were already waiting; Hijacked counts
	// connections taken over with Hijack.
	Workers, WorkersMax int
	Queued, Running     int64
	QueueWaitTotal      time.Duration
	Dequeued, Shed      uint64
	Hijacked            int64
}

// Stats returns the counters. Any goroutine; loop counters may lag by one loop iteration.
func (s *Server) Stats() Stats {
	st := Stats{Stats: s.rs.Stats()}
	for _, ls := range s.loopStates() {
		if ls != nil {
			st.Requests += ls.pubRequests.Load()
			st.Rejected += ls.pubRejected.Load()
		}
	}
	if p := s.pool; p != nil {
		st.Workers, st.WorkersMax = int(p.live.Load()), p.max
		st.Queued = p.queued.Load()
		st.Running = p.running.Load()
		st.QueueWaitTotal = time.Duration(p.waitNs.Load())
		st.Dequeued, st.Shed = p.dequeued.Load(), p.shed.Load()
		st.Hijacked = p.hijacked.Load()
	}
	return st
}
