package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// The floor server is the lower bound our stack is compared with: the least a Go program can
// do to answer HTTP keep-alive requests over epoll. One goroutine per loop, locked to its OS
// thread, polls epoll without blocking and blocks in epoll_wait only when nothing is ready;
// reads and writes are raw system calls (floor_raw.go); connections are edge-triggered for input and output; one read
// per readiness event (a short read means the socket is drained, and new data raises a new
// edge); the input is only scanned for CRLFCRLF and each one found is answered with the canned
// response, all of a read's answers in one write. It does not parse HTTP, read request bodies
// or time anything out. It is not a server anyone should deploy.
func floorServer() Server {
	return Server{
		Name:        "floor",
		Description: "minimal edge-triggered epoll responder (CRLFCRLF scan, canned reply): the lower bound",
		start:       startFloor,
	}
}

type floorInstance struct {
	addr    string
	wakeFD  int // eventfd that tells every loop to stop
	loops   []*floorLoop
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

type floorLoop struct {
	epfd   int
	lfd    int
	wakeFD int
	conns  []floorConn // indexed by fd
	buf    []byte
}

type floorConn struct {
	open bool
	scan crlfScanner
	out  []byte // unwritten output after EAGAIN; nil when drained
}

func startFloor(_ context.Context, o Options) (Instance, error) {
	tcp, err := net.ResolveTCPAddr("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("floor: %w: %w", ErrBadOptions, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("floor: eventfd: %w", err)
	}
	f := &floorInstance{wakeFD: wake}
	fail := func(err error) (Instance, error) {
		for _, l := range f.loops {
			l.closeFDs()
		}
		_ = unix.Close(wake)
		return nil, err
	}
	reuse := o.Loops > 1
	for i := 0; i < o.Loops; i++ {
		lfd, bound, err := listenRaw(tcp, reuse)
		if err != nil {
			return fail(fmt.Errorf("floor: %w", err))
		}
		if i == 0 {
			// Further loops listen on the port the kernel picked for the first.
			f.addr = bound.String()
			tcp = bound
		}
		l := &floorLoop{lfd: lfd, wakeFD: wake, epfd: -1, buf: make([]byte, 64<<10)}
		f.loops = append(f.loops, l)
		if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
			return fail(fmt.Errorf("floor: epoll_create1: %w", err))
		}
		for _, fd := range []int{lfd, wake} {
			ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
			if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				return fail(fmt.Errorf("floor: epoll_ctl: %w", err))
			}
		}
	}
	clock.acquire()
	for _, l := range f.loops {
		f.wg.Go(l.run)
	}
	return f, nil
}

func (f *floorInstance) Addr() string { return f.addr }
func (f *floorInstance) PID() int     { return os.Getpid() }

func (f *floorInstance) Close() error {
	f.closeMu.Lock()
	defer f.closeMu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var one [8]byte
	one[0] = 1 // eventfd counters are host-endian; any non-zero value wakes it
	if _, err := unix.Write(f.wakeFD, one[:]); err != nil {
		return fmt.Errorf("floor: wake: %w", err)
	}
	f.wg.Wait()
	clock.release()
	return unix.Close(f.wakeFD)
}

// listenRaw opens a non-blocking listening socket bound to a.
func listenRaw(a *net.TCPAddr, reusePort bool) (int, *net.TCPAddr, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		s := &unix.SockaddrInet4{Port: a.Port}
		if ip4 != nil {
			copy(s.Addr[:], ip4)
		}
		sa = s
	} else {
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: a.Port}
		copy(s.Addr[:], a.IP.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	closeErr := func(op string, err error) (int, *net.TCPAddr, error) {
		_ = unix.Close(fd)
		return -1, nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return closeErr("SO_REUSEADDR", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return closeErr("SO_REUSEPORT", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return closeErr("bind", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		return closeErr("listen", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return closeErr("getsockname", err)
	}
	var bound *net.TCPAddr
	switch s := got.(type) {
	case *unix.SockaddrInet4:
		bound = &net.TCPAddr{IP: net.IP(s.Addr[:]).To16(), Port: s.Port}
	case *unix.SockaddrInet6:
		bound = &net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}
	default:
		return closeErr("getsockname", errors.New("unexpected address family"))
	}
	return fd, bound, nil
}

func (l *floorLoop) closeFDs() {
	for fd := range l.conns {
		if l.conns[fd].open {
			_ = unix.Close(fd)
		}
	}
	l.conns = nil
	if l.lfd >= 0 {
		_ = unix.Close(l.lfd)
	}
	if l.epfd >= 0 {
		_ = unix.Close(l.epfd)
	}
}

func (l *floorLoop) run() {
	// One OS thread per loop, like a C event loop: the goroutine is never moved.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.closeFDs()
	events := make([]unix.EpollEvent, 256)
	for {
		// Events were just handled, so more are likely ready: poll without blocking first, and
		// block (through the scheduler) only when there is nothing to do.
		n, errno := rawEpollPoll(l.epfd, events)
		if errno != 0 || n == 0 {
			var err error
			n, err = unix.EpollWait(l.epfd, events, -1)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue // a signal (Go's preemption among them) interrupted the wait
				}
				return
			}
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			switch fd {
			case l.wakeFD:
				return
			case l.lfd:
				l.accept()
			default:
				l.serve(fd, events[i].Events)
			}
		}
	}
}

func (l *floorLoop) accept() {
	for {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			// EAGAIN: the queue is empty. ECONNABORTED: the peer gave up; try the next.
			// EMFILE/ENFILE: out of descriptors. The listener is level-triggered, so the
			// next epoll_wait reports it again at once and the loop spins until a descriptor
			// is free: a cost the floor accepts (reactord pauses accepting instead).
			if errors.Is(err, unix.ECONNABORTED) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		// Go's net package sets TCP_NODELAY on every connection; do the same so the
		// comparison is about the event loop, not Nagle.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			_ = unix.Close(fd)
			continue
		}
		for fd >= len(l.conns) {
			l.conns = append(l.conns, floorConn{})
		}
		l.conns[fd] = floorConn{open: true}
	}
}

func (l *floorLoop) serve(fd int, ev uint32) {
	if fd >= len(l.conns) || !l.conns[fd].open {
		return
	}
	c := &l.conns[fd]
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		for {
			r, errno := rawRead(fd, l.buf)
			if errno != 0 {
				if errno == unix.EAGAIN {
					break
				}
				if errno == unix.EINTR {
					continue
				}
				l.close(fd)
				return
			}
			if r == 0 {
				l.close(fd)
				return
			}
			if k := c.scan.count(l.buf[:r]); k > 0 {
				if c.out == nil {
					if !l.write(fd, c, clock.responses(k)) {
						return
					}
				} else {
					c.out = append(c.out, clock.responses(k)...)
				}
			}
			if r < len(l.buf) {
				// A short read drained the socket; more data raises a new edge.
				break
			}
		}
	}
	if ev&unix.EPOLLOUT != 0 && c.out != nil {
		pending := c.out
		c.out = nil
		l.write(fd, c, pending)
	}
}

// write sends p, keeping what the kernel would not take in c.out for the next EPOLLOUT edge.
// It returns false if the connection was closed.
func (l *floorLoop) write(fd int, c *floorConn, p []byte) bool {
	for len(p) > 0 {
		w, errno := rawWrite(fd, p)
		if errno != 0 {
			if errno == unix.EINTR {
				continue
			}
			if errno == unix.EAGAIN {
				c.out = append([]byte(nil), p...)
				return true
			}
			l.close(fd)
			return false
		}
		p = p[w:]
	}
	return true
}

func (l *floorLoop) close(fd int) {
	// Closing the only descriptor of the socket also drops it from the epoll set.
	_ = unix.Close(fd)
	l.conns[fd] = floorConn{}
}
