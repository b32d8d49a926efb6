package reactor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
)

// Server runs N event loops over listening sockets. Its methods are safe from any goroutine,
// loop goroutines included, and a loop goroutine (of any Server) never waits in them for a
// loop: Close called on a loop stops the loops and returns at once, Listen and ListenPacket
// called on a loop hand their sockets to the loops and return without waiting for the
// registration, and Shutdown and Serve, which could only wait, return ErrCalledOnLoop there.
// Each method says when its effect is complete.
type Server struct {
	h   Handler
	opt options
	io  ioChoice // the poller backend, or the completion mode and its epoll (pollers.go)

	mu       sync.Mutex
	state    serverState
	packets  []*PacketConn
	addrs    []net.Addr
	loops    []*Loop                 // under mu; fixed once started
	loopsPtr atomic.Pointer[[]*Loop] // the same, for lock-free readers (Stats, Loops)
	pending  [][]socket              // sockets opened before Start, one group per Listen call
	failErr  error

	open         atomic.Int64
	acceptPaused atomic.Uint64
	tlsPool      *handshakePool // TLS handshakes of every TLS listener; no goroutine until used
	connsShed    atomic.Uint64
	connsRefused atomic.Uint64 // closed at accept by the Admitter (WithAdmitter)
	connCap      int64         // open connections at which accepting pauses or sheds (options.connCap); 0 = none
	// acceptHeld counts the credits the completion mode's accepts hold under connCap: what the
	// kernel may still accept without asking the loops (reserveAccepts).
	acceptHeld atomic.Int64
}

type serverState uint8

const (
	stateNew serverState = iota
	stateRunning
	stateDraining
	stateClosed
)

// NewServer returns a server that will pass connections to h, configured by opts. It opens
// nothing yet. Errors: ErrInvalidArgument for a nil h, ErrInvalidOption (joined, one per bad
// option), poller.ErrUnknownBackend for a poller name that is not compiled in.
func NewServer(h Handler, opts ...Option) (*Server, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidArgument)
	}
	s := &Server{h: h, opt: defaultOptions()}
	for _, o := range opts {
		if o == nil {
			s.opt.fail("nil Option")
			continue
		}
		o(&s.opt)
	}
	if err := s.opt.err(); err != nil {
		return nil, err
	}
	ch, err := resolvePoller(s.opt.poller)
	if err != nil {
		return nil, err
	}
	s.io = ch
	s.tlsPool = newHandshakePool(s.opt.tlsLimit)
	return s, nil
}

// PollerName returns the name of the poller backend the loops use ("epoll", "poll", ...), or
// "uring" for the io_uring completion mode. Any goroutine.
func (s *Server) PollerName() string { return s.io.name }

// Listen opens a listening socket ("tcp", "tcp4", "tcp6" or "unix") and returns its bound
// address, with an ephemeral port (":0") resolved. Options configure the socket: WithTLS makes
// its connections speak TLS. It may be called before or after Start.
// With WithLoadBalancing(PerLoopListeners) a TCP address gets one socket per loop where the kernel
// spreads connections over such sockets (Linux; FreeBSD through SO_REUSEPORT_LB). On macOS,
// whose SO_REUSEPORT would send every connection to one of them, it gets one socket with
// SO_REUSEPORT set and connections are handed to the loops round-robin. Errors:
// ErrUnsupportedNetwork, ErrBadAddress, ErrInvalidArgument (a bad option), ErrServerClosed,
// and the kernel's (EADDRINUSE, ...).
//
// The socket is listening (connections queue in the kernel's backlog) when Listen returns. On
// a running server each socket is then owned by its loop, which registers it, and closes it
// when the server stops. Called from an ordinary goroutine, Listen returns once every socket
// is registered (or its error). Called on a loop goroutine it does not wait: connections are
// accepted from the loops' next iterations, and a registration that fails then (the poller
// refused the descriptor) closes that socket and is logged instead of returned.
func (s *Server) Listen(network, addr string, opts ...ListenOption) (net.Addr, error) {
	lo, err := buildListenOptions(opts)
	if err != nil {
		return nil, err
	}
	ep, err := sockopt.Resolve(network, addr)
	if err != nil {
		return nil, err
	}
	if ep.Kind == sockopt.UDP {
		return nil, fmt.Errorf("%w: %q (use ListenPacket)", ErrUnsupportedNetwork, network)
	}
	count := 1
	if s.opt.balancing == PerLoopListeners && ep.Kind == sockopt.TCP && sockopt.ReusePortBalances {
		count = s.opt.loops
	}
	fds, bound, err := s.openSockets(ep, count)
	if err != nil {
		return nil, err
	}
	socks := make([]socket, count)
	for i, fd := range fds {
		ln := &listener{srv: s, fd: fd, kind: ep.Kind, addr: bound, perLoop: count > 1, tls: lo.tlsListen()}
		if i == 0 {
			ln.path = ep.Path
		}
		socks[i] = ln
	}
	if err := s.attach(socks, func() { s.addrs = append(s.addrs, bound) }); err != nil {
		return nil, err
	}
	return bound, nil
}

// ListenPacket opens a UDP socket ("udp", "udp4", "udp6") whose datagrams go to h, and
// returns its bound address. With WithLoadBalancing(PerLoopListeners) each loop gets a socket on the
// same port where the kernel spreads datagrams over them (not on macOS: there, as without
// PerLoopListeners, one socket is served by the first loop, since every socket on the port would get
// a copy of each broadcast). WithBroadcast applies. Errors as Listen, and ErrInvalidArgument
// for a nil h. Ownership, and when it returns, are as for Listen.
func (s *Server) ListenPacket(network, addr string, h PacketHandler) (net.Addr, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil PacketHandler", ErrInvalidArgument)
	}
	ep, err := sockopt.Resolve(network, addr)
	if err != nil {
		return nil, err
	}
	if ep.Kind != sockopt.UDP {
		return nil, fmt.Errorf("%w: %q (use Listen)", ErrUnsupportedNetwork, network)
	}
	count := 1
	if s.opt.balancing == PerLoopListeners && sockopt.ReusePortBalances {
		count = s.opt.loops
	}
	fds, bound, err := s.openSockets(ep, count)
	if err != nil {
		return nil, err
	}
	pcs := make([]*PacketConn, count)
	socks := make([]socket, count)
	for i, fd := range fds {
		pcs[i] = &PacketConn{fd: fd, h: h, family: ep.Family, local: bound}
		socks[i] = pcs[i]
	}
	if err := s.attach(socks, func() {
		s.packets = append(s.packets, pcs...)
		s.addrs = append(s.addrs, bound)
	}); err != nil {
		return nil, err
	}
	return bound, nil
}

// openSockets opens count sockets for ep; after the first, they bind its resolved port.
func (s *Server) openSockets(ep sockopt.Endpoint, count int) ([]int, net.Addr, error) {
	cfg := sockopt.Config{
		ReuseAddr: s.opt.reuseAddr,
		// WithLoadBalancing(PerLoopListeners) sets SO_REUSEPORT even where it opens a single socket
		// because the kernel would not balance (macOS), so a restart can still share the port.
		ReusePort: s.opt.reusePort || count > 1 || s.opt.balancing == PerLoopListeners && !sockopt.ReusePortBalances,
		Broadcast: s.opt.broadcast && ep.Kind == sockopt.UDP,
		RcvBuf:    s.opt.rcvBuf,
		SndBuf:    s.opt.sndBuf,
		Backlog:   s.opt.backlog,
	}
	fds := make([]int, 0, count)
	fail := func(err error) ([]int, net.Addr, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, err
	}
	fd, err := sockopt.Open(ep, cfg)
	if err != nil {
		return fail(err)
	}
	fds = append(fds, fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail(fmt.Errorf("reactor: getsockname: %w", err))
	}
	bound := sockopt.ToAddr(ep.Kind, sa)
	for i := 1; i < count; i++ {
		fd, err := sockopt.Open(ep.WithPort(sockopt.Port(sa)), cfg)
		if err != nil {
			return fail(err)
		}
		fds = append(fds, fd)
	}
	return fds, bound, nil
}

// Start opens the pollers, registers the listeners opened so far and starts the loops; it
// returns once they are serving. Errors: ErrServerStarted, ErrServerClosed, or the poller's
// or registration's error (nothing is left running then: the sockets opened so far are closed
// and the server is closed).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning, stateDraining:
		return ErrServerStarted
	case stateClosed:
		return ErrServerClosed
	}
	loops := make([]*Loop, s.opt.loops)
	fail := func(err error) error {
		// Nothing is left running: the sockets opened so far close with the pollers, and
		// the server is closed (its listeners are gone, so it could not serve them again).
		for _, group := range s.pending {
			for _, sk := range group {
				sk.shut()
			}
		}
		s.pending = nil
		for _, l := range loops {
			if l != nil {
				if l.ring != nil {
					l.ring.close() // never enabled: no request was submitted
				}
				l.poll.Close()
			}
		}
		s.state = stateClosed
		return err
	}
	for i := range loops {
		p, err := s.io.backend.Open()
		if err != nil {
			return fail(fmt.Errorf("reactor: open %s poller: %w", s.io.backend.Name, err))
		}
		loops[i] = newLoop(s, i, p)
		if s.io.ring {
			if err := loops[i].openRing(); err != nil {
				return fail(err)
			}
		}
	}
	// Before the sockets register: the completion mode's listeners arm their accepts for the
	// room under the cap (ringIO.syncAccept).
	s.connCap = s.opt.connCap()
	// The loop goroutines have not started, and the sockets still belong to the server (under
	// s.mu), so this goroutine registers them on the loops' pollers itself.
	for _, group := range s.pending {
		for i, sk := range group {
			sk.bind(loops[i%len(loops)])
			if err := sk.register(); err != nil {
				return fail(err)
			}
		}
	}
	s.pending = nil
	s.loops = loops
	s.loopsPtr.Store(&loops)
	s.state = stateRunning
	for _, l := range loops {
		started := make(chan struct{})
		go l.run(started)
		<-started
	}
	return nil
}

// Serve starts the server if Start was not called, then blocks until Shutdown or Close and
// returns ErrServerClosed, or the error that stopped a loop. On a loop goroutine, where it
// would wait for ever, it returns ErrCalledOnLoop at once and starts nothing.
func (s *Server) Serve() error {
	if currentLoop() != nil {
		return ErrCalledOnLoop
	}
	if err := s.Start(); err != nil && !errors.Is(err, ErrServerStarted) {
		return err
	}
	for _, l := range s.Loops() {
		<-l.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failErr != nil {
		return s.failErr
	}
	return ErrServerClosed
}

// loopFailed records a loop's fatal error and stops the other loops.
func (s *Server) loopFailed(err error) {
	s.mu.Lock()
	if s.failErr == nil {
		s.failErr = err
	}
	s.state = stateClosed
	s.mu.Unlock()
	for _, l := range s.Loops() {
		l.stop()
	}
}

// Shutdown stops accepting (each listener first accepts and serves the connections already
// in its accept queue, which closing it would reset; on Linux a socket filter keeps new ones
// out meanwhile, see sockopt.HoldBacklog), lets connections finish what is in flight (busy connections: held,
// paused or kept open after EOF, see the package doc; kept input; pending output; input that
// reached the socket but was not read yet), closes each connection as soon as it is idle, and
// returns once all are closed, or when ctx is done (then
// it closes the rest at once and returns ctx.Err()). OnClose gets a nil error for connections
// closed while idle. On a loop goroutine (of any Server), where waiting could deadlock, it
// returns ErrCalledOnLoop at once and does nothing: call it from another goroutine
// (go s.Shutdown(ctx)) and wait for Serve. Before Start it is Close; after Close it returns
// ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidArgument)
	}
	if currentLoop() != nil {
		return ErrCalledOnLoop
	}
	s.mu.Lock()
	switch s.state {
	case stateNew:
		s.mu.Unlock()
		return s.Close()
	case stateClosed:
		s.mu.Unlock()
		return ErrServerClosed
	}
	loops := s.loops
	s.state = stateDraining
	s.mu.Unlock()
	// First every loop stops accepting, and only then does any loop close idle connections.
	// The listeners of a PerLoopListeners group close one by one: a client whose idle
	// connection one loop closed would reconnect through a listener of a loop that has not
	// stopped yet and meet the close a second time. Each listener serves what is already
	// queued on it before closing (drainAndShut), since closing resets queued connections.
	stopped := make([]chan struct{}, len(loops))
	for i, l := range loops {
		stopped[i] = make(chan struct{})
		if err := l.Post(func() {
			for _, h := range l.others {
				if ln, ok := h.(*listener); ok {
					ln.drainAndShut()
				} else {
					h.shut()
				}
			}
			close(stopped[i])
		}); err != nil {
			close(stopped[i]) // the loop has stopped: its teardown closed its sockets
		}
	}
	for i, l := range loops {
		select {
		case <-stopped[i]:
		case <-l.done:
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
	for _, l := range loops {
		l.Post(func() {
			l.draining = true
			l.drainIdle()
		})
	}
	for _, l := range loops {
		select {
		case <-l.drained:
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
	return s.Close()
}

// Close stops every loop at once: listeners close, every open connection is closed without
// flushing and OnClose gets ErrServerClosed. From an ordinary goroutine it returns once the
// loops have stopped (their OnClose calls are done). On a loop goroutine (of any Server) it
// does not wait: the loops stop at the end of their current iteration, the caller's own once
// its callback returns, and Serve returns when they all have. Waiting, it also waits for the
// TLS handshake workers to exit. Later calls return nil, and wait like the first.
func (s *Server) Close() error {
	s.mu.Lock()
	s.state = stateClosed
	loops := s.loops
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	// Before Start the sockets belong to the server; taken out of s.pending under the lock,
	// they are this call's to close.
	for _, group := range pending {
		for _, sk := range group {
			sk.shut()
		}
	}
	for _, l := range loops {
		l.stop()
	}
	if currentLoop() != nil {
		s.tlsPool.close(false)
		return nil // a loop never waits for a loop: two loops closing at once would deadlock
	}
	for _, l := range loops {
		<-l.done
	}
	// The loops have closed every connection, which ends the handshakes in progress: the
	// workers exit promptly (unless a GetCertificate callback of the caller's blocks).
	s.tlsPool.close(true)
	return nil
}

// Addrs returns the bound addresses of the listeners and packet sockets, in the order they
// were opened (one per Listen/ListenPacket call).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// PacketConns returns the datagram sockets opened by ListenPacket, in the order they were
// opened (one per loop for an address served with WithLoadBalancing(PerLoopListeners)), so a
// program can send with WriteTo before any datagram has arrived. Any goroutine.
func (s *Server) PacketConns() []*PacketConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*PacketConn(nil), s.packets...)
}

// Loops returns the server's loops, or nil before Start. Any goroutine.
func (s *Server) Loops() []*Loop {
	p := s.loopsPtr.Load()
	if p == nil {
		return nil
	}
	return *p
}

// Stats returns a snapshot of the counters. Any goroutine; it takes no lock.
func (s *Server) Stats() Stats {
	st := Stats{
		ConnsOpen:           s.open.Load(),
		AcceptPaused:        s.acceptPaused.Load(),
		ConnsShed:           s.connsShed.Load(),
		ConnsRefused:        s.connsRefused.Load(),
		TLSHandshakesActive: s.tlsPool.active.Load(),
		TLSHandshakesQueued: s.tlsPool.queued.Load(),
		TLSHandshakeWorkers: s.tlsPool.live.Load(),
	}
	for _, l := range s.Loops() {
		ls := l.Stats()
		st.ConnsAccepted += ls.ConnsAccepted
		st.ConnsDialed += ls.ConnsDialed
		st.ConnsAdopted += ls.ConnsAdopted
		st.DialsFailed += ls.DialsFailed
		st.ConnsClosed += ls.ConnsClosed
		st.BytesIn += ls.BytesIn
		st.BytesOut += ls.BytesOut
		st.TLSHandshakes += ls.TLSHandshakes
		st.TLSHandshakeErrors += ls.TLSHandshakeErrors
		st.TLSHandshakeTimeouts += ls.TLSHandshakeTimeouts
		st.TLSHandshakesAborted += ls.TLSHandshakesAborted
		st.Loops = append(st.Loops, ls)
	}
	return st
}

// tuneConn applies per-connection TCP options. A failure (the peer already reset) is not worth
// more than a debug line: the first read or write will report it.
func (s *Server) tuneConn(fd int) {
	if s.opt.noDelay {
		if err := sockopt.SetNoDelay(fd, true); err != nil {
			s.opt.logger.Debug("TCP_NODELAY", zap.Error(err))
		}
	}
	if err := sockopt.SetKeepAlive(fd, s.opt.keepAlive); err != nil {
		s.opt.logger.Debug("keep-alive", zap.Error(err))
	}
}
