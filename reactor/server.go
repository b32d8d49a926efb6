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
	"github.com/reactord/reactord/poller"
)

// Server runs N event loops over listening sockets. Its methods are safe from any goroutine.
type Server struct {
	h       Handler
	opt     options
	backend poller.Backend

	mu        sync.Mutex
	state     serverState
	listeners []*listener
	packets   []*PacketConn
	addrs     []net.Addr
	loops     []*Loop                 // under mu; fixed once started
	loopsPtr  atomic.Pointer[[]*Loop] // the same, for lock-free readers (Stats, Loops)
	pending   []pendingReg            // registrations made before Start
	failErr   error
	failed    chan struct{}

	open         atomic.Int64
	acceptPaused atomic.Uint64
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
	s := &Server{h: h, opt: defaultOptions(), failed: make(chan struct{})}
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
	b, err := poller.Lookup(s.opt.poller)
	if err != nil {
		return nil, err
	}
	s.backend = b
	return s, nil
}

// PollerName returns the name of the poller backend the loops use ("epoll", "poll", ...).
func (s *Server) PollerName() string { return s.backend.Name }

// Listen opens a listening socket ("tcp", "tcp4", "tcp6" or "unix") and returns its bound
// address, with an ephemeral port (":0") resolved. It may be called before or after Start.
// With WithLoadBalancing(PerLoopListeners) a TCP address gets one socket per loop where the kernel
// spreads connections over such sockets (Linux; FreeBSD through SO_REUSEPORT_LB). On macOS,
// whose SO_REUSEPORT would send every connection to one of them, it gets one socket with
// SO_REUSEPORT set and connections are handed to the loops round-robin. Errors:
// ErrUnsupportedNetwork, ErrBadAddress, ErrServerClosed, and the kernel's (EADDRINUSE, ...).
func (s *Server) Listen(network, addr string) (net.Addr, error) {
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
	lns := make([]*listener, count)
	for i, fd := range fds {
		lns[i] = &listener{srv: s, fd: fd, kind: ep.Kind, addr: bound, perLoop: count > 1}
	}
	lns[0].path = ep.Path
	if err := s.attach(len(lns), func(i int, l *Loop) error {
		lns[i].loop = l
		return lns[i].register()
	}, func() {
		s.listeners = append(s.listeners, lns...)
		s.addrs = append(s.addrs, bound)
	}); err != nil {
		for _, ln := range lns {
			ln.loop = nil
			ln.shut()
		}
		return nil, err
	}
	return bound, nil
}

// ListenPacket opens a UDP socket ("udp", "udp4", "udp6") whose datagrams go to h, and
// returns its bound address. With WithLoadBalancing(PerLoopListeners) each loop gets a socket on the
// same port where the kernel spreads datagrams over them (not on macOS: there, as without
// PerLoopListeners, one socket is served by the first loop, since every socket on the port would get
// a copy of each broadcast). WithBroadcast applies. Errors as Listen, and ErrInvalidArgument
// for a nil h.
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
	for i, fd := range fds {
		pcs[i] = &PacketConn{fd: fd, h: h, family: ep.Family, local: bound}
	}
	if err := s.attach(len(pcs), func(i int, l *Loop) error {
		pcs[i].loop = l
		return pcs[i].register()
	}, func() {
		s.packets = append(s.packets, pcs...)
		s.addrs = append(s.addrs, bound)
	}); err != nil {
		for _, pc := range pcs {
			pc.loop = nil
			pc.shut()
		}
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

// attach registers n sockets, socket i on loop i (mod the number of loops): directly when the
// loops are not running yet, otherwise on each loop's goroutine. commit runs under s.mu once
// every registration succeeded.
func (s *Server) attach(n int, reg func(i int, l *Loop) error, commit func()) error {
	s.mu.Lock()
	switch s.state {
	case stateNew:
		// Registered at Start, when the loops exist; remember the registrations.
		s.pending = append(s.pending, pendingReg{n: n, reg: reg})
		commit()
		s.mu.Unlock()
		return nil
	case stateRunning:
	default:
		s.mu.Unlock()
		return ErrServerClosed
	}
	loops := s.loops
	s.mu.Unlock()
	var errs []error
	for i := 0; i < n; i++ {
		l := loops[i%len(loops)]
		i := i
		if err := runOn(l, func() error { return reg(i, l) }); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateClosed {
		return ErrServerClosed
	}
	commit()
	return nil
}

type pendingReg struct {
	n   int
	reg func(i int, l *Loop) error
}

// runOn runs f on l's goroutine and waits for its result.
func runOn(l *Loop, f func() error) error {
	if l.onLoopThread() {
		return f()
	}
	done := make(chan error, 1)
	if err := l.Post(func() { done <- f() }); err != nil {
		return ErrServerClosed
	}
	select {
	case err := <-done:
		return err
	case <-l.done:
		select {
		case err := <-done:
			return err
		default:
			return ErrServerClosed
		}
	}
}

// Start opens the pollers, registers the listeners opened so far and starts the loops; it
// returns once they are serving. Errors: ErrServerStarted, ErrServerClosed, or the poller's
// or registration's error (nothing is left running then).
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
		for _, l := range loops {
			if l != nil {
				for _, h := range l.others {
					h.shut()
				}
				l.poll.Close()
			}
		}
		return err
	}
	for i := range loops {
		p, err := s.backend.Open()
		if err != nil {
			return fail(fmt.Errorf("reactor: open %s poller: %w", s.backend.Name, err))
		}
		loops[i] = newLoop(s, i, p)
	}
	// The loop goroutines have not started, so this goroutine may use their pollers.
	for _, p := range s.pending {
		for i := 0; i < p.n; i++ {
			if err := p.reg(i, loops[i%len(loops)]); err != nil {
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
// returns ErrServerClosed, or the error that stopped a loop.
func (s *Server) Serve() error {
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

// Shutdown stops accepting, lets connections finish what is in flight (busy connections: held,
// paused or kept open after EOF, see the package doc; kept input; pending output), closes each
// connection as soon as it is idle, and
// returns once all are closed, or when ctx is done (then it closes the rest at once and
// returns ctx.Err()). OnClose gets a nil error for connections closed while idle. It must not
// be called from a loop goroutine (ErrCalledOnLoop); after Close it returns ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidArgument)
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
	for _, l := range loops {
		if l.onLoopThread() {
			s.mu.Unlock()
			return ErrCalledOnLoop
		}
	}
	s.state = stateDraining
	s.mu.Unlock()
	for _, l := range loops {
		l.Post(func() {
			for _, h := range l.others {
				h.shut()
			}
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
// flushing and OnClose gets ErrServerClosed. It waits for the loops to finish, except the
// caller's own when called from a loop goroutine. Later calls return nil.
func (s *Server) Close() error {
	s.mu.Lock()
	prev := s.state
	s.state = stateClosed
	loops := s.loops
	if prev == stateNew {
		for _, ln := range s.listeners {
			ln.shut()
		}
		for _, pc := range s.packets {
			pc.shut()
		}
		s.pending = nil
	}
	s.mu.Unlock()
	var own *Loop
	for _, l := range loops {
		if own == nil && l.onLoopThread() {
			own = l
		}
		l.stop()
	}
	for _, l := range loops {
		if l != own {
			<-l.done
		}
	}
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
	st := Stats{ConnsOpen: s.open.Load(), AcceptPaused: s.acceptPaused.Load()}
	for _, l := range s.Loops() {
		ls := l.Stats()
		st.ConnsAccepted += ls.ConnsAccepted
		st.ConnsClosed += ls.ConnsClosed
		st.BytesIn += ls.BytesIn
		st.BytesOut += ls.BytesOut
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
