package reactor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
)

// Sockets the server did not open itself, and handing its own over.
//
// A listening socket can outlive the process that opened it: systemd opens it before the
// daemon starts (socket activation) and passes it as descriptor 3, 4, ...; a daemon replacing
// its own binary passes its sockets to the new process across exec. Connections that arrive
// meanwhile wait in the socket's backlog and are accepted by whoever serves it next, so
// nothing is refused while the server program changes. ListenFd, ListenOn, ListenPacketFd and
// ListenPacketOn serve such sockets; ListenerFds duplicates the server's sockets for the next
// owner; ReleaseListeners stops serving them without removing anything the next owner uses.

// ListenFd serves listening stream sockets (TCP or Unix) that the program did not open with
// Listen: descriptors inherited from systemd's socket activation, from a process being
// replaced, or from any other owner. Several descriptors form one group bound to the same
// address, such as the SO_REUSEPORT sockets of a server that used
// WithLoadBalancing(PerLoopListeners): socket i is served by loop i (mod the number of loops),
// and when there are at least as many sockets as loops each loop accepts from its own;
// otherwise connections are handed to the loops round-robin, or by LeastConnections. It returns
// the bound address. It may be called before or after Start.
//
// Each descriptor must be a bound, listening (SO_ACCEPTCONN) stream socket of family AF_INET,
// AF_INET6 or AF_UNIX. On success ListenFd owns them: it serves duplicates (non-blocking,
// close-on-exec) and closes the descriptors given; the server closes its duplicates when it
// stops. Since O_NONBLOCK belongs to the socket, not the descriptor, other holders of the same
// socket see it too. A Unix socket's file is never removed by a server that did not create it.
// On error the descriptors are left open and remain the caller's. Errors: ErrInvalidArgument
// (no descriptor, a negative or repeated one), ErrUnsupportedNetwork (not a socket, a UDP,
// raw or unbound socket, a stream socket that does not listen, descriptors of different
// addresses), the kernel's (EBADF for a descriptor that is not open), ErrServerClosed.
func (s *Server) ListenFd(fds ...int) (net.Addr, error) {
	return s.ListenFdWith(fds)
}

// ListenFdWith is ListenFd with options for the sockets, such as WithTLS: a program that
// passes its TLS sockets on (a reload, a binary upgrade) serves them again with it. A bad
// option is ErrInvalidArgument, and leaves the descriptors the caller's.
func (s *Server) ListenFdWith(fds []int, opts ...ListenOption) (net.Addr, error) {
	lo, err := buildListenOptions(opts)
	if err != nil {
		return nil, err
	}
	g, err := inspectGroup(fds, false)
	if err != nil {
		return nil, err
	}
	dups, err := dupAll(fds)
	if err != nil {
		return nil, err
	}
	bound := sockopt.ToAddr(g.Kind, g.Sa)
	perLoop := s.opt.balancing == PerLoopListeners && g.Kind == sockopt.TCP && sockopt.ReusePortBalances &&
		len(dups) >= s.opt.loops
	socks := make([]socket, len(dups))
	for i, fd := range dups {
		// path stays empty: the socket file belongs to whoever created it.
		socks[i] = &listener{srv: s, fd: fd, kind: g.Kind, addr: bound, perLoop: perLoop, tls: lo.tlsListen()}
	}
	// On error attach has closed the duplicates (or their loops do): fds stay the caller's.
	if err := s.attach(socks, func() { s.addrs = append(s.addrs, bound) }); err != nil {
		return nil, err
	}
	closeAll(fds)
	return bound, nil
}

// ListenPacketFd serves bound UDP sockets the program did not open with ListenPacket, with
// datagrams going to h; several descriptors form one group bound to the same address (socket i
// on loop i, mod the number of loops). Ownership, errors and the rules on descriptors are as
// for ListenFd, except that each must be an unconnected, bound AF_INET or AF_INET6 datagram
// socket; a nil h is ErrInvalidArgument. The sockets appear in PacketConns.
func (s *Server) ListenPacketFd(h PacketHandler, fds ...int) (net.Addr, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil PacketHandler", ErrInvalidArgument)
	}
	g, err := inspectGroup(fds, true)
	if err != nil {
		return nil, err
	}
	dups, err := dupAll(fds)
	if err != nil {
		return nil, err
	}
	bound := sockopt.ToAddr(sockopt.UDP, g.Sa)
	pcs := make([]*PacketConn, len(dups))
	socks := make([]socket, len(dups))
	for i, fd := range dups {
		pcs[i] = &PacketConn{fd: fd, h: h, family: g.Family, local: bound}
		socks[i] = pcs[i]
	}
	if err := s.attach(socks, func() {
		s.packets = append(s.packets, pcs...)
		s.addrs = append(s.addrs, bound)
	}); err != nil {
		return nil, err
	}
	closeAll(fds)
	return bound, nil
}

// ListenOn serves a listener opened by package net (or handed over as one, by a socket
// activation library for instance): a *net.TCPListener or *net.UnixListener. The server
// serves a duplicate of its socket and, on success, closes ln, so that the Go runtime stops
// watching it; a *net.UnixListener is told first not to remove its socket file (the server
// serves that file now). Never call Accept on ln afterwards. On error ln is left open.
// Options are those of Listen (WithTLS). Errors: ErrInvalidArgument for a nil ln or a bad
// option, ErrUnsupportedNetwork for another type, and those of ListenFd.
func (s *Server) ListenOn(ln net.Listener, opts ...ListenOption) (net.Addr, error) {
	if _, err := buildListenOptions(opts); err != nil {
		return nil, err
	}
	fd, err := dupNetFd(ln)
	if err != nil {
		return nil, err
	}
	addr, err := s.ListenFdWith([]int{fd}, opts...)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	ln.Close()
	return addr, nil
}

// ListenPacketOn serves a *net.UDPConn opened by package net (net.ListenUDP or
// net.ListenPacket, not a connected one from Dial), with datagrams going to h. As with ListenOn,
// the server serves a duplicate and, on success, closes pc; never read from pc afterwards.
// Errors: ErrInvalidArgument for a nil pc or h, ErrUnsupportedNetwork for another type, and
// those of ListenPacketFd.
func (s *Server) ListenPacketOn(pc net.PacketConn, h PacketHandler) (net.Addr, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil PacketHandler", ErrInvalidArgument)
	}
	fd, err := dupNetFd(pc)
	if err != nil {
		return nil, err
	}
	addr, err := s.ListenPacketFd(h, fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	pc.Close()
	return addr, nil
}

// ListenerFd is a duplicate of one of a Server's sockets, made by ListenerFds to be handed to
// another Server (ListenFd, ListenPacketFd) or another process.
type ListenerFd struct {
	// Fd is the duplicate descriptor, close-on-exec and non-blocking. The caller owns it and
	// must close it (or hand it to ListenFd, which does).
	Fd int
	// Addr is the bound address: a *net.TCPAddr, *net.UnixAddr (a listening socket) or a
	// *net.UDPAddr (a packet socket).
	Addr net.Addr
}

// ListenerFds returns a duplicate of every listening and packet socket the server serves, in
// the order of Addrs; the several sockets of one address (WithLoadBalancing(PerLoopListeners))
// are consecutive, in loop order, and belong in one ListenFd or ListenPacketFd call. To hand
// the sockets to a new process, wrap each Fd in os.NewFile and pass them in exec.Cmd's
// ExtraFiles (exec clears close-on-exec in the child only), then close them; the child
// receives them as descriptors 3, 4, ... in that order. Sockets closed by Shutdown or
// ReleaseListeners are not included. Any goroutine except a loop's (ErrCalledOnLoop: it waits
// for each loop to duplicate the sockets it owns). Errors: ErrServerClosed, ErrCalledOnLoop,
// and the kernel's (EMFILE); on error nothing is left open.
func (s *Server) ListenerFds() ([]ListenerFd, error) {
	type dup struct {
		ListenerFd
		loop int
	}
	var got []dup
	var errs []error
	take := func(loop, fd int, addr net.Addr) {
		nfd, err := sockopt.Dup(fd)
		if err != nil {
			errs = append(errs, err)
			return
		}
		got = append(got, dup{ListenerFd{Fd: nfd, Addr: addr}, loop})
	}
	s.mu.Lock()
	state, addrs := s.state, append([]net.Addr(nil), s.addrs...)
	if state == stateNew {
		// Not started: the sockets are the server's, under s.mu.
		for _, group := range s.pending {
			for i, sk := range group {
				switch sk := sk.(type) {
				case *listener:
					if sk.fd >= 0 {
						take(i, sk.fd, sk.addr)
					}
				case *PacketConn:
					if sk.fd >= 0 {
						take(i, sk.fd, sk.local)
					}
				}
			}
		}
	}
	s.mu.Unlock()
	if state == stateClosed {
		return nil, ErrServerClosed
	}
	if state != stateNew {
		// Each loop owns its sockets: it duplicates them itself, one loop at a time, so
		// got needs no lock (each task's writes happen before onLoops sees it finish).
		if err := s.onLoops(func(l *Loop) {
			for fd, h := range l.others {
				switch h := h.(type) {
				case *listener:
					take(l.idx, fd, h.addr)
				case *PacketConn:
					take(l.idx, fd, h.local)
				}
			}
		}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, d := range got {
			unix.Close(d.Fd)
		}
		return nil, err
	}
	order := func(a net.Addr) int {
		for i, b := range addrs {
			if a == b {
				return i
			}
		}
		return len(addrs)
	}
	slices.SortStableFunc(got, func(a, b dup) int {
		if oa, ob := order(a.Addr), order(b.Addr); oa != ob {
			return oa - ob
		}
		return a.loop - b.loop
	})
	out := make([]ListenerFd, len(got))
	for i, d := range got {
		out[i] = d.ListenerFd
	}
	return out, nil
}

// ReleaseListeners stops serving the server's listening and packet sockets, typically once
// another process or Server serves them (see ListenerFds): each loop closes its own, and a
// Unix socket file the server created is left in place, since the next owner serves it.
// Connections already accepted are unaffected: they finish as usual, and Shutdown or Close
// still drains or stops them. Sockets opened by later Listen calls are served as usual. Before
// Start the sockets are closed and forgotten. Any goroutine except a loop's
// (ErrCalledOnLoop); returns once every loop has closed its sockets. Errors: ErrServerClosed
// after Close, ErrCalledOnLoop.
func (s *Server) ReleaseListeners() error {
	s.mu.Lock()
	if s.state == stateNew {
		for _, group := range s.pending {
			for _, sk := range group {
				if ln, ok := sk.(*listener); ok {
					ln.path = ""
				}
				sk.shut()
			}
		}
		s.packets, s.addrs, s.pending = nil, nil, nil
		s.mu.Unlock()
		return nil
	}
	closed := s.state == stateClosed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	return s.onLoops(func(l *Loop) {
		for _, h := range l.others {
			switch h := h.(type) {
			case *listener:
				h.path = ""
				h.shut()
			case *PacketConn:
				h.shut()
			}
		}
	})
}

// onLoops runs f on each loop's goroutine in turn and waits for it. A loop that has stopped
// runs it during its teardown, or not at all (ErrServerClosed). On a loop goroutine (of any
// Server) it returns ErrCalledOnLoop: a loop never waits for a loop.
func (s *Server) onLoops(f func(l *Loop)) error {
	loops := s.Loops()
	if currentLoop() != nil {
		return ErrCalledOnLoop
	}
	for _, l := range loops {
		done := make(chan struct{})
		if err := l.Post(func() { f(l); close(done) }); err != nil {
			return ErrServerClosed
		}
		select {
		case <-done:
		case <-l.done:
			select {
			case <-done:
			default:
				return ErrServerClosed
			}
		}
	}
	return nil
}

// inspectGroup checks that fds are sockets of one kind bound to one address: listening stream
// sockets, or (packet) unconnected UDP sockets.
func inspectGroup(fds []int, packet bool) (sockopt.Socket, error) {
	if len(fds) == 0 {
		return sockopt.Socket{}, fmt.Errorf("%w: no descriptor", ErrInvalidArgument)
	}
	var first sockopt.Socket
	for i, fd := range fds {
		if fd < 0 {
			return sockopt.Socket{}, fmt.Errorf("%w: descriptor %d", ErrInvalidArgument, fd)
		}
		if slices.Contains(fds[:i], fd) {
			return sockopt.Socket{}, fmt.Errorf("%w: descriptor %d given twice", ErrInvalidArgument, fd)
		}
		sk, err := sockopt.Inspect(fd)
		if err != nil {
			return sockopt.Socket{}, err
		}
		switch {
		case packet && sk.Kind != sockopt.UDP:
			return sockopt.Socket{}, fmt.Errorf("%w: descriptor %d is a stream socket (use ListenFd)", ErrUnsupportedNetwork, fd)
		case !packet && sk.Kind == sockopt.UDP:
			return sockopt.Socket{}, fmt.Errorf("%w: descriptor %d is a datagram socket (use ListenPacketFd)", ErrUnsupportedNetwork, fd)
		case !packet && !sk.Listening:
			return sockopt.Socket{}, fmt.Errorf("%w: descriptor %d is a stream socket that does not listen", ErrUnsupportedNetwork, fd)
		}
		if packet {
			// A connected UDP socket (from connect(2), or net.Dial) only hears its one peer.
			if _, err := unix.Getpeername(fd); err == nil {
				return sockopt.Socket{}, fmt.Errorf("%w: descriptor %d is a connected datagram socket", ErrUnsupportedNetwork, fd)
			}
		}
		if i == 0 {
			first = sk
			continue
		}
		a, b := sockopt.ToAddr(first.Kind, first.Sa), sockopt.ToAddr(sk.Kind, sk.Sa)
		if sk.Kind != first.Kind || sk.Family != first.Family || a.String() != b.String() {
			return sockopt.Socket{}, fmt.Errorf("%w: descriptors %d and %d are bound to different addresses (%s %v, %s %v)",
				ErrUnsupportedNetwork, fds[0], fd, a.Network(), a, b.Network(), b)
		}
	}
	return first, nil
}

// dupAll duplicates fds and readies the duplicates for a loop; on error none is left open.
func dupAll(fds []int) ([]int, error) {
	dups := make([]int, 0, len(fds))
	for _, fd := range fds {
		nfd, err := sockopt.Dup(fd)
		if err == nil {
			err = sockopt.Adopt(nfd)
			if err != nil {
				unix.Close(nfd)
			}
		}
		if err != nil {
			closeAll(dups)
			return nil, err
		}
		dups = append(dups, nfd)
	}
	return dups, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// dupNetFd duplicates the socket of a net listener or UDP connection. It goes through
// SyscallConn, which lends the descriptor without changing it; File would also work but makes
// the socket blocking for every holder as soon as anyone calls its Fd method.
func dupNetFd(v any) (int, error) {
	var rc interface{ Control(func(fd uintptr)) error }
	var err error
	switch c := v.(type) {
	case *net.TCPListener:
		if c != nil {
			rc, err = c.SyscallConn()
		}
	case *net.UnixListener:
		if c != nil {
			rc, err = c.SyscallConn()
		}
	case *net.UDPConn:
		if c != nil {
			rc, err = c.SyscallConn()
		}
	case nil:
	default:
		return -1, fmt.Errorf("%w: %T (want *net.TCPListener, *net.UnixListener or *net.UDPConn)", ErrUnsupportedNetwork, v)
	}
	if err != nil {
		return -1, err
	}
	if rc == nil {
		return -1, fmt.Errorf("%w: nil %T", ErrInvalidArgument, v)
	}
	nfd := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) { nfd, dupErr = sockopt.Dup(int(fd)) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	return nfd, nil
}

// File returns the duplicate as an *os.File named "network:address" (for example
// "tcp:127.0.0.1:8080"), for exec.Cmd's ExtraFiles; the file owns the descriptor from then on.
// The socket stays non-blocking for every holder: os.NewFile leaves a descriptor that is
// already non-blocking as it is, so exec, which calls the file's Fd method, does not switch it.
func (d ListenerFd) File() *os.File {
	return os.NewFile(uintptr(d.Fd), d.Addr.Network()+":"+d.Addr.String())
}
