package reactor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
	"github.com/reactord/reactord/poller"
)

// Outbound and adopted connections.
//
// A Server's Handler serves the connections its listeners accept. A connection the program
// opens itself — Dial — or hands over — Adopt, AdoptFd — gets the Handler given with it, so a
// client codec and a server codec can share one loop. Either way the connection is a Conn like
// any other: watermarks, timeouts, half-close, Stats and Shutdown treat it the same.
//
// Dial returns at once. The socket is created and connect(2) started on the loop, after a name
// lookup on a goroutine of its own when the host is not a literal address; the outcome reaches
// the handler on the loop: OnOpen once connected, or OnClose with the error if no address
// could be reached before the timeout. The returned Conn may be written to before OnOpen: the
// bytes leave once the connection is established.

// handlerSet is a Handler with its optional interfaces resolved once.
type handlerSet struct {
	h    Handler
	wh   WritableHandler // h as a WritableHandler, or nil
	eh   ReadEOFHandler  // h as a ReadEOFHandler, or nil
	dh   DeadlineHandler // h as a DeadlineHandler, or nil
	dial *dialState      // a dialed connection until it is established; nil otherwise
}

func newHandlerSet(h Handler) handlerSet {
	hs := handlerSet{h: h}
	hs.wh, _ = h.(WritableHandler)
	hs.eh, _ = h.(ReadEOFHandler)
	hs.dh, _ = h.(DeadlineHandler)
	return hs
}

// DefaultDialTimeout bounds a Dial (name lookup and connect) unless DialTimeout says otherwise.
const DefaultDialTimeout = 30 * time.Second

// ErrDialTimeout is the cause (wrapped, with the address) passed to OnClose when a Dial did
// not connect within its timeout.
var ErrDialTimeout = errors.New("reactor: dial timeout")

// ErrNotRunning is returned by Server.Dial, Server.Adopt and Server.AdoptFd before Start and
// after the server stopped: there is no loop to take the connection.
var ErrNotRunning = errors.New("reactor: server not running")

// DialOption configures Dial, Adopt and AdoptFd.
type DialOption func(*dialConfig)

type dialConfig struct {
	timeout time.Duration
	ctx     any
	errs    []error
}

// DialTimeout bounds the name lookup and the connect of a Dial together; when it expires the
// handler's OnClose gets an error wrapping ErrDialTimeout. 0 means DefaultDialTimeout;
// negative is an error. Adopt and AdoptFd ignore it.
func DialTimeout(d time.Duration) DialOption {
	return func(c *dialConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: DialTimeout(%v): negative", ErrInvalidOption, d))
			return
		}
		c.timeout = d
	}
}

// DialConnContext sets the connection's Context (see Conn.SetContext) before any callback,
// so OnOpen and OnClose, including the OnClose of a dial that failed, can find the caller's
// state. It is the way to attach state when dialing from another goroutine.
func DialConnContext(v any) DialOption {
	return func(c *dialConfig) { c.ctx = v }
}

func dialOptions(opts []DialOption) (dialConfig, error) {
	cfg := dialConfig{timeout: DefaultDialTimeout}
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, fmt.Errorf("%w: nil DialOption", ErrInvalidOption))
			continue
		}
		o(&cfg)
	}
	if cfg.timeout == 0 {
		cfg.timeout = DefaultDialTimeout
	}
	return cfg, errors.Join(cfg.errs...)
}

// dialState is what a dialed connection needs until it is established.
type dialState struct {
	network, address string
	host             string // to look up; "" once addrs holds the candidates
	service          string // port name to look up ("http"), or ""
	port             int
	addrs            []unix.Sockaddr // candidates not tried yet
	timeout          time.Duration
	cancel           context.CancelFunc // of a name lookup in progress
	lastErr          error
	connectAt        int64 // loop-clock time the dial gives up, 0 = none (on the connection's timer entry)
}

// Dial opens a stream connection to address on this loop and serves it with h. network is
// "tcp", "tcp4", "tcp6" (address "host:port"; a host name is looked up off the loop, and the
// addresses found are tried in order) or "unix" (address a socket path). It returns the Conn
// at once; the outcome is delivered on the loop goroutine: h.OnOpen(c) once the connection is
// established, or h.OnClose(c, err) if it could not be, err wrapping the cause (the kernel's
// ECONNREFUSED and the like, a *net.DNSError, ErrDialTimeout, or ErrServerClosed when the
// loop stopped first). Bytes written before OnOpen are sent once connected; Close before
// OnOpen abandons the attempt (OnClose gets nil).
//
// Dial is safe from any goroutine; from another goroutine, use DialConnContext rather than
// SetContext to attach state. It returns an error, and makes no callback, for a nil h,
// ErrUnsupportedNetwork, ErrBadAddress, ErrInvalidOption, and ErrLoopClosed once the loop has
// stopped.
func (l *Loop) Dial(network, address string, h Handler, opts ...DialOption) (*Conn, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: Dial with a nil Handler", ErrInvalidArgument)
	}
	cfg, err := dialOptions(opts)
	if err != nil {
		return nil, err
	}
	ds := &dialState{network: network, address: address, timeout: cfg.timeout}
	var kind sockopt.Kind
	switch network {
	case "tcp", "tcp4", "tcp6":
		kind = sockopt.TCP
		if err := ds.parseHostPort(); err != nil {
			return nil, err
		}
	case "unix":
		kind = sockopt.Unix
		ep, err := sockopt.Resolve(network, address)
		if err != nil {
			return nil, err
		}
		ds.addrs = []unix.Sockaddr{ep.Sa}
	default:
		return nil, fmt.Errorf("%w: Dial %q", ErrUnsupportedNetwork, network)
	}
	c := &Conn{loop: l, fd: -1, kind: kind, ctx: cfg.ctx}
	hs := newHandlerSet(h)
	hs.dial = ds
	c.hs = &hs
	// Writable interest is what reports the end of connect(2); until then output waits (see
	// markDirty), and it is flushed by onEvent once the connection is established.
	c.flags = fConnecting | fWantWrite
	if err := l.post(task{op: opFunc, f: c.startDial}); err != nil {
		return nil, err
	}
	return c, nil
}

// parseHostPort splits a TCP address into a literal candidate or a name to look up.
func (ds *dialState) parseHostPort() error {
	host, port, err := net.SplitHostPort(ds.address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadAddress, err)
	}
	if p, err := strconv.Atoi(port); err == nil {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("%w: port %d in %q", ErrBadAddress, p, ds.address)
		}
		ds.port = p
	} else if port == "" {
		return fmt.Errorf("%w: no port in %q", ErrBadAddress, ds.address)
	} else {
		ds.service = port
	}
	if host == "" {
		// As package net does: an empty host is the local system.
		host = "127.0.0.1"
		if ds.network == "tcp6" {
			host = "::1"
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil && ds.service == "" {
		sa, err := ds.sockaddr(ip)
		if err != nil {
			return err
		}
		ds.addrs = []unix.Sockaddr{sa}
		return nil
	}
	ds.host = host
	return nil
}

// sockaddr converts a candidate address, checking it fits the network.
func (ds *dialState) sockaddr(ip netip.Addr) (unix.Sockaddr, error) {
	ip = ip.Unmap()
	switch {
	case ip.Is4() && ds.network != "tcp6":
		return &unix.SockaddrInet4{Port: ds.port, Addr: ip.As4()}, nil
	case ip.Is6() && ds.network != "tcp4":
		sa := &unix.SockaddrInet6{Port: ds.port, Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			}
		}
		return sa, nil
	}
	return nil, fmt.Errorf("%w: %v does not fit network %q", ErrBadAddress, ip, ds.network)
}

// dialErr wraps the cause of a failed dial with the address.
func (ds *dialState) dialErr(cause error) error {
	return fmt.Errorf("reactor: dial %s %s: %w", ds.network, ds.address, cause)
}

// startDial runs on the loop: it arms the timeout and starts the lookup or the connect.
func (c *Conn) startDial() {
	l := c.loop
	ds := c.hs.dial
	switch {
	case c.flags&fClosed != 0:
		return
	case c.state.Load() != connOpen:
		c.closeNow(nil) // Close was called before the dial started
		return
	case l.stopping.Load():
		c.closeNow(ErrServerClosed)
		return
	}
	// The connect deadline rides on the connection's one timer, with the timeouts it may get
	// later (conn_timer.go); it is dropped once the connection is established.
	ds.connectAt = l.nowNs + int64(ds.timeout)
	c.armAt(ds.connectAt)
	if ds.host == "" {
		c.connectNext()
		return
	}
	// A lookup may block for seconds: it runs on a goroutine of its own and posts the
	// result back. The loop keeps the connection in l.dialing meanwhile, so a loop that stops
	// first still delivers its OnClose.
	ctx, cancel := context.WithTimeout(context.Background(), ds.timeout)
	ds.cancel = cancel
	if l.dialing == nil {
		l.dialing = make(map[*Conn]struct{})
	}
	l.dialing[c] = struct{}{}
	go c.lookup(ctx, ds.network, ds.host, ds.service)
}

// lookup resolves the host (and a named port) off the loop and posts the result.
func (c *Conn) lookup(ctx context.Context, network, host, service string) {
	ipNet := "ip"
	switch network {
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	}
	var port int
	var err error
	if service != "" {
		port, err = net.DefaultResolver.LookupPort(ctx, network, service)
	}
	var ips []netip.Addr
	if err == nil {
		if ip, perr := netip.ParseAddr(host); perr == nil {
			ips = []netip.Addr{ip}
		} else {
			ips, err = net.DefaultResolver.LookupNetIP(ctx, ipNet, host)
		}
	}
	// If the loop has stopped, Post fails and teardown has delivered OnClose (see dialing).
	c.loop.Post(func() { c.resolved(ips, port, err) })
}

// resolved takes the lookup's result on the loop.
func (c *Conn) resolved(ips []netip.Addr, port int, err error) {
	if c.flags&fClosed != 0 {
		return // timed out, closed, or the loop stopped meanwhile
	}
	ds := c.hs.dial
	delete(c.loop.dialing, c)
	ds.cancel()
	ds.cancel = nil
	ds.host = ""
	if err != nil {
		c.closeNow(ds.dialErr(err))
		return
	}
	if ds.service != "" {
		ds.port = port
	}
	for _, ip := range ips {
		if sa, err := ds.sockaddr(ip); err == nil {
			ds.addrs = append(ds.addrs, sa)
		}
	}
	if len(ds.addrs) == 0 {
		c.closeNow(ds.dialErr(fmt.Errorf("%w: no address of network %s", ErrBadAddress, ds.network)))
		return
	}
	c.connectNext()
}

// connectNext starts connecting to the next candidate address; when none is left it closes
// the connection with the last error. Loop goroutine.
func (c *Conn) connectNext() {
	l := c.loop
	ds := c.hs.dial
	for len(ds.addrs) > 0 {
		sa := ds.addrs[0]
		ds.addrs = ds.addrs[1:]
		fd, err := sockopt.Connect(sa)
		if err != nil {
			ds.lastErr = err
			continue
		}
		if c.fd >= 0 {
			// The previous candidate failed: move the connection to the new socket. The old
			// one closes at the end of the iteration (closeFd), so its number cannot be
			// reused before the events of this iteration that may still name it are gone.
			old := int(c.fd)
			l.poll.Remove(old)
			l.conns[old] = nil
			l.closeFd(old)
			c.fd = int32(fd)
			if err := l.track(c, poller.Readable|poller.Writable); err != nil {
				unix.Close(fd)
				c.fd = -1
				l.nconns--
				l.openConns.Add(-1)
				l.srv.open.Add(-1)
				c.closeNow(ds.dialErr(err))
			}
			return
		}
		c.fd = int32(fd)
		if err := l.track(c, poller.Readable|poller.Writable); err != nil {
			unix.Close(fd)
			c.fd = -1
			c.closeNow(ds.dialErr(err))
			return
		}
		l.nconns++
		l.openConns.Add(1)
		l.srv.open.Add(1)
		return
	}
	if ds.lastErr == nil {
		ds.lastErr = ErrBadAddress
	}
	c.closeNow(ds.dialErr(ds.lastErr))
}

// onConnect handles readiness while connect(2) is under way. It reports whether the
// connection is now established and onEvent should go on with the event (flush output that
// was written early, read what the peer may already have sent).
func (c *Conn) onConnect(ev poller.Events) bool {
	if ev&(poller.Writable|poller.Hangup|poller.Error) == 0 {
		return false
	}
	ds := c.hs.dial
	if err := sockopt.SocketError(int(c.fd)); err != nil {
		// Refused, unreachable, reset: try the next address, if any.
		ds.lastErr = os.NewSyscallError("connect", err)
		c.connectNext()
		return false
	}
	l := c.loop
	ds.connectAt = 0 // the timer entry, if queued for it, finds nothing to do
	c.hs.dial = nil
	c.flags &^= fConnecting
	l.st.dialed++
	if c.kind == sockopt.TCP {
		l.srv.tuneConn(int(c.fd))
	}
	if c.flags&fTimeouts != 0 {
		to := &c.x.Load().to
		to.lastActive, to.lastRead = l.nowNs, l.nowNs
	}
	c.hs.h.OnOpen(c)
	return c.flags&fClosed == 0
}

// endDial releases what a dial that never got established holds (closeNow).
func (c *Conn) endDial() {
	ds := c.hs.dial
	c.hs.dial = nil
	if ds.cancel != nil {
		ds.cancel()
		delete(c.loop.dialing, c)
	}
	c.loop.st.dialFailed++
}

// abortDials closes the connections still waiting for a name lookup (teardown).
func (l *Loop) abortDials() {
	for c := range l.dialing {
		c.closeNow(ErrServerClosed)
	}
}

// track puts c's descriptor in the fd table and registers it with the poller for interest.
func (l *Loop) track(c *Conn, interest poller.Events) error {
	if err := l.poll.Add(int(c.fd), interest); err != nil {
		return err
	}
	c.reg = uint8(interest)
	l.place(c)
	return nil
}

// place puts c's descriptor in the fd table, growing it to hold the number. The io_uring
// completion mode places the connections it drives without a poller registration.
func (l *Loop) place(c *Conn) {
	fd := int(c.fd)
	if fd >= len(l.conns) {
		n := 2 * len(l.conns)
		if n <= fd {
			n = fd + 64
		}
		grown := make([]*Conn, n)
		copy(grown, l.conns)
		l.conns = grown
	}
	l.conns[fd] = c
	c.born, c.seq = l.clockMs(), l.addSeq // its age, for shedding (shed.go)
	l.addSeq++
	// A new connection has consumed nothing: it is in the first shedding group. Say so to the
	// other loops at once. What this loop published at its last shed may be a later group
	// (only idle connections then, or none), and another loop out of descriptors — a limit of
	// the process, which this loop's connections use up too — would go on reading it and shed
	// its idle keep-alive connections while this one waits for its first byte (Loop.shed). A
	// value too low is harmless: the other loop's shed asks this one to shed too, and that
	// publishes what is here.
	if l.srv != nil && l.srv.opt.shed && l.shedLowest.Load() != 0 {
		l.shedLowest.Store(0)
	}
}

// Adopt moves an established stream connection — a *net.TCPConn, a *net.UnixConn, or any
// net.Conn whose SyscallConn gives a connected stream socket — into the loop, to be served
// by h: its descriptor is duplicated and nc is closed, so the Go runtime lets go of it. Bytes
// the program already read from nc (into a bufio.Reader, say) are not seen by the loop. h.OnOpen
// runs on the loop goroutine once the connection is registered. Only DialConnContext applies.
//
// Adopt is safe from any goroutine. Errors (nc is left open then): ErrInvalidArgument for a
// nil nc or h, ErrUnsupportedNetwork for a connection that is not a stream socket, the dup's
// error, and ErrLoopClosed.
func (l *Loop) Adopt(nc net.Conn, h Handler, opts ...DialOption) (*Conn, error) {
	if nc == nil || h == nil {
		return nil, fmt.Errorf("%w: Adopt(%v, %v)", ErrInvalidArgument, nc, h)
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%w: %T has no descriptor", ErrUnsupportedNetwork, nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) {
		dup, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, os.NewSyscallError("dup", dupErr)
	}
	c, err := l.adoptConn(dup, h, opts)
	if err != nil {
		unix.Close(dup)
		return nil, err
	}
	nc.Close()
	return c, nil
}

// AdoptFd moves a connected stream socket (TCP or Unix), given by its descriptor, into the
// loop, to be served by h; the reactor owns fd from then on (it makes it non-blocking and
// close-on-exec, and closes it). h.OnOpen runs on the loop goroutine once it is registered. Only
// DialConnContext applies. Safe from any goroutine. Errors (fd is left alone then):
// ErrInvalidArgument for a negative fd or a nil h, ErrUnsupportedNetwork for a descriptor that
// is not a connected stream socket, and ErrLoopClosed.
func (l *Loop) AdoptFd(fd int, h Handler, opts ...DialOption) (*Conn, error) {
	if fd < 0 || h == nil {
		return nil, fmt.Errorf("%w: AdoptFd(%d, %v)", ErrInvalidArgument, fd, h)
	}
	return l.adoptConn(fd, h, opts)
}

func (l *Loop) adoptConn(fd int, h Handler, opts []DialOption) (*Conn, error) {
	cfg, err := dialOptions(opts)
	if err != nil {
		return nil, err
	}
	kind, err := sockopt.StreamKind(fd)
	if err != nil {
		return nil, fmt.Errorf("%w: descriptor %d is not a connected stream socket: %v", ErrUnsupportedNetwork, fd, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	unix.CloseOnExec(fd)
	c := &Conn{loop: l, fd: int32(fd), kind: kind, ctx: cfg.ctx}
	hs := newHandlerSet(h)
	c.hs = &hs
	if err := l.post(task{op: opFunc, f: c.attachAdopted}); err != nil {
		return nil, err
	}
	return c, nil
}

// attachAdopted registers an adopted connection on the loop and calls OnOpen.
func (c *Conn) attachAdopted() {
	l := c.loop
	if c.state.Load() != connOpen || l.stopping.Load() {
		// Closed before it was registered, or the loop is stopping: it never opens.
		unix.Close(int(c.fd))
		c.fd = -1
		err := ErrServerClosed
		if c.state.Load() != connOpen {
			err = nil
		}
		c.closeNow(err)
		return
	}
	if err := l.track(c, poller.Readable); err != nil {
		unix.Close(int(c.fd))
		c.fd = -1
		c.closeNow(err)
		return
	}
	l.nconns++
	l.openConns.Add(1)
	l.srv.open.Add(1)
	l.st.adopted++
	c.hs.h.OnOpen(c)
}

// pickLoop returns the loop with the fewest open connections, for connections the program
// opens or hands over.
func (s *Server) pickLoop() (*Loop, error) {
	loops := s.Loops()
	if len(loops) == 0 {
		return nil, ErrNotRunning
	}
	best := loops[0]
	for _, l := range loops[1:] {
		if l.openConns.Load() < best.openConns.Load() {
			best = l
		}
	}
	return best, nil
}

// Dial is Loop.Dial on the loop with the fewest open connections. Any goroutine. It returns
// ErrNotRunning before Start, and ErrLoopClosed once the server stopped.
func (s *Server) Dial(network, address string, h Handler, opts ...DialOption) (*Conn, error) {
	l, err := s.pickLoop()
	if err != nil {
		return nil, err
	}
	return l.Dial(network, address, h, opts...)
}

// Adopt is Loop.Adopt on the loop with the fewest open connections. Any goroutine.
func (s *Server) Adopt(nc net.Conn, h Handler, opts ...DialOption) (*Conn, error) {
	l, err := s.pickLoop()
	if err != nil {
		return nil, err
	}
	return l.Adopt(nc, h, opts...)
}

// AdoptFd is Loop.AdoptFd on the loop with the fewest open connections. Any goroutine.
func (s *Server) AdoptFd(fd int, h Handler, opts ...DialOption) (*Conn, error) {
	l, err := s.pickLoop()
	if err != nil {
		return nil, err
	}
	return l.AdoptFd(fd, h, opts...)
}
