package reactor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

func init() { childModes["serve-fd"] = serveFdChild }

// tagHandler answers every chunk with tag followed by the chunk, so a test can tell which
// server (or process) served a connection.
func tagHandler(tag string) Handler {
	return HandlerFuncs{Data: func(c *Conn, in []byte) int {
		c.Write(append([]byte(tag), in...))
		return len(in)
	}}
}

// rawListener opens a listening socket the way systemd or another program would: with plain
// system calls, blocking, without close-on-exec.
func rawListener(t *testing.T, network string) (fd int, addr string) {
	t.Helper()
	var family int
	var sa unix.Sockaddr
	switch network {
	case "tcp":
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	case "unix":
		addr = filepath.Join(t.TempDir(), "s")
		family, sa = unix.AF_UNIX, &unix.SockaddrUnix{Name: addr}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatal(err)
	}
	if network == "tcp" {
		got, _ := unix.Getsockname(fd)
		addr = fmt.Sprintf("127.0.0.1:%d", got.(*unix.SockaddrInet4).Port)
	}
	return fd, addr
}

func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// roundTrip writes msg on c and reads the tagged answer.
func roundTrip(t *testing.T, c net.Conn, tag, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	want := tag + msg
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
}

// TestListenFdServesQueuedConnections plays systemd's part: the socket exists and clients
// connect before the server starts; once it serves the descriptor, their requests are answered.
func TestListenFdServesQueuedConnections(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			fd, addr := rawListener(t, network)
			// Connected and written before anyone accepts: the kernel queues them.
			var early []net.Conn
			for i := 0; i < 3; i++ {
				c := dial(t, network, addr)
				if _, err := c.Write([]byte("early")); err != nil {
					t.Fatal(err)
				}
				early = append(early, c)
			}
			s, err := NewServer(tagHandler("A:"), WithLoops(2))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := s.ListenFd(fd)
			if err != nil {
				t.Fatal(err)
			}
			if fdOpen(fd) {
				t.Errorf("ListenFd left the caller's descriptor %d open", fd)
			}
			if got.Network() != network || (network == "tcp" && got.String() != addr) {
				t.Errorf("bound address %s %s, want %s %s", got.Network(), got, network, addr)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			for _, c := range early {
				buf := make([]byte, len("A:early"))
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "A:early" {
					t.Fatalf("queued connection: read %q, %v", buf, err)
				}
			}
			roundTrip(t, dial(t, network, addr), "A:", "late")
			s.Close()
			if network == "unix" {
				// The socket file was created by someone else: the server leaves it.
				if _, err := os.Stat(addr); err != nil {
					t.Errorf("server removed a socket file it did not create: %v", err)
				}
			}
		})
	}
}

func TestListenFdErrors(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	mk := func(domain, typ int) int {
		fd, err := unix.Socket(domain, typ, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	bound := func(typ int) int {
		fd := mk(unix.AF_INET, typ)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	listening := func() int {
		fd := bound(unix.SOCK_STREAM)
		if err := unix.Listen(fd, 8); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const closed = 1<<20 - 1 // above any descriptor the test process has open
	udp := bound(unix.SOCK_DGRAM)
	unixDgram := mk(unix.AF_UNIX, unix.SOCK_DGRAM)
	if err := unix.Bind(unixDgram, &unix.SockaddrUnix{Name: filepath.Join(t.TempDir(), "d")}); err != nil {
		t.Fatal(err)
	}
	l1, l2 := listening(), listening()

	tests := []struct {
		name string
		fds  []int
		want error
		msg  string
	}{
		{"none", nil, ErrInvalidArgument, "no descriptor"},
		{"negative", []int{-1}, ErrInvalidArgument, "descriptor -1"},
		{"twice", []int{l1, l1}, ErrInvalidArgument, "given twice"},
		{"pipe", []int{p[0]}, ErrUnsupportedNetwork, "not a socket"},
		{"file", []int{int(f.Fd())}, ErrUnsupportedNetwork, "not a socket"},
		{"closed", []int{closed}, unix.EBADF, "fstat"},
		{"udp", []int{udp}, ErrUnsupportedNetwork, "use ListenPacketFd"},
		{"unix datagram", []int{unixDgram}, ErrUnsupportedNetwork, "unsupported type"},
		{"not listening", []int{bound(unix.SOCK_STREAM)}, ErrUnsupportedNetwork, "does not listen"},
		{"unbound", []int{mk(unix.AF_INET, unix.SOCK_STREAM)}, ErrUnsupportedNetwork, "not bound"},
		{"two addresses", []int{l1, l2}, ErrUnsupportedNetwork, "different addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ListenFd(tc.fds...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ListenFd = %v; want %v mentioning %q", err, tc.want, tc.msg)
			}
			for _, fd := range tc.fds {
				if fd >= 0 && fd != closed && !fdOpen(fd) {
					t.Errorf("descriptor %d closed by a failed ListenFd", fd)
				}
			}
		})
	}
	if _, err := s.ListenPacketFd(nil, udp); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ListenPacketFd(nil handler) = %v", err)
	}
	if _, err := s.ListenPacketFd(udpEcho(), l1); !errors.Is(err, ErrUnsupportedNetwork) || !strings.Contains(err.Error(), "use ListenFd") {
		t.Errorf("ListenPacketFd(stream) = %v", err)
	}
	conn := bound(unix.SOCK_DGRAM)
	if err := unix.Connect(conn, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 9}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListenPacketFd(udpEcho(), conn); !errors.Is(err, ErrUnsupportedNetwork) || !strings.Contains(err.Error(), "connected") {
		t.Errorf("ListenPacketFd(connected) = %v", err)
	}
	// The server took nothing: no address was added.
	if a := s.Addrs(); len(a) != 0 {
		t.Errorf("Addrs after failures = %v", a)
	}
	s.Close()
	if _, err := s.ListenFd(l1); !errors.Is(err, ErrServerClosed) || !fdOpen(l1) {
		t.Errorf("ListenFd on a closed server = %v (descriptor open: %v)", err, fdOpen(l1))
	}
}

type wrappedListener struct{ net.Listener }

func TestListenOn(t *testing.T) {
	s, err := NewServer(tagHandler("S:"), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "on.sock")
	ul, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range []net.Listener{tcp, ul} {
		addr, err := s.ListenOn(ln)
		if err != nil {
			t.Fatalf("ListenOn(%T): %v", ln, err)
		}
		if addr.String() != ln.Addr().String() {
			t.Errorf("ListenOn address %v, want %v", addr, ln.Addr())
		}
		// ln was closed: the Go runtime no longer accepts on it.
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept on the handed-over listener = %v, want net.ErrClosed", err)
		}
		roundTrip(t, dial(t, addr.Network(), addr.String()), "S:", "hi")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("closing the handed-over UnixListener removed its file: %v", err)
	}

	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var nilTCP *net.TCPListener
	for _, tc := range []struct {
		ln   net.Listener
		want error
	}{
		{nil, ErrInvalidArgument},
		{nilTCP, ErrInvalidArgument},
		{wrappedListener{other}, ErrUnsupportedNetwork},
	} {
		if _, err := s.ListenOn(tc.ln); !errors.Is(err, tc.want) {
			t.Errorf("ListenOn(%T) = %v, want %v", tc.ln, err, tc.want)
		}
	}
	// A refused listener stays open and usable.
	go func() {
		if c, err := net.Dial("tcp", other.Addr().String()); err == nil {
			c.Close()
		}
	}()
	if c, err := other.Accept(); err != nil {
		t.Errorf("listener unusable after a refused ListenOn: %v", err)
	} else {
		c.Close()
	}
}

func TestListenPacketOn(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.ListenPacketOn(pc, udpEcho())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.PacketConns()); n != 1 {
		t.Fatalf("PacketConns = %d", n)
	}
	c := dial(t, "udp", addr.String())
	buf := make([]byte, 64)
	testsupport.Eventually(t, 0, "a UDP echo", func() bool {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Read(buf)
		return err == nil && string(buf[:n]) == "ping"
	})
	connected, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer connected.Close()
	if _, err := s.ListenPacketOn(connected.(*net.UDPConn), udpEcho()); !errors.Is(err, ErrUnsupportedNetwork) {
		t.Errorf("ListenPacketOn(connected) = %v", err)
	}
	if _, err := s.ListenPacketOn(pc, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ListenPacketOn(nil handler) = %v", err)
	}
}

// TestHandOffBetweenServers moves a running server's sockets to a second server, as a
// configuration reload does in one process: connections the first had accepted stay with it,
// new ones go to the second, and nothing is refused in between.
func TestHandOffBetweenServers(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		opts          []Option
	}{
		{"tcp", "tcp", []Option{WithLoops(2)}},
		{"tcp per-loop", "tcp", []Option{WithLoops(2), WithLoadBalancing(PerLoopListeners)}},
		{"unix", "unix", []Option{WithLoops(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewServer(tagHandler("A:"), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			addr := "127.0.0.1:0"
			if tc.network == "unix" {
				addr = filepath.Join(t.TempDir(), "h.sock")
			}
			bound, err := a.Listen(tc.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			udpAddr, err := a.ListenPacket("udp", "127.0.0.1:0", udpEcho())
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			old := dial(t, tc.network, bound.String())
			roundTrip(t, old, "A:", "1")

			fds, err := a.ListenerFds()
			if err != nil {
				t.Fatal(err)
			}
			want := 2 // the stream socket and the UDP one
			perLoop := len(tc.opts) > 1
			if perLoop {
				want = 4 // one of each per loop
			}
			if len(fds) != want {
				t.Fatalf("ListenerFds = %d sockets, want %d: %v", len(fds), want, fds)
			}
			var stream, packet []int
			for i, d := range fds {
				if d.Addr.String() == bound.String() {
					stream = append(stream, d.Fd)
					if i >= len(fds)/2 {
						t.Errorf("ListenerFds out of Addrs order: %v", fds)
					}
				} else if d.Addr.String() == udpAddr.String() {
					packet = append(packet, d.Fd)
				} else {
					t.Fatalf("unexpected address %v", d.Addr)
				}
			}

			b, err := NewServer(tagHandler("B:"), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := b.ListenFd(stream...); err != nil {
				t.Fatal(err)
			}
			if _, err := b.ListenPacketFd(udpEcho(), packet...); err != nil {
				t.Fatal(err)
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			// Queued while both serve the socket: whoever accepts it answers.
			between := dial(t, tc.network, bound.String())
			if err := a.ReleaseListeners(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 3)
			between.Write([]byte("2"))
			if _, err := io.ReadFull(between, buf); err != nil || (string(buf) != "A:2" && string(buf) != "B:2") {
				t.Fatalf("connection made during the hand-off: %q, %v", buf, err)
			}
			for i := 0; i < 4; i++ {
				roundTrip(t, dial(t, tc.network, bound.String()), "B:", "3")
			}
			roundTrip(t, old, "A:", "4") // still A's
			if tc.network == "unix" {
				a.Close()
				if _, err := os.Stat(bound.String()); err != nil {
					t.Fatalf("the releasing server removed the socket file: %v", err)
				}
				roundTrip(t, dial(t, tc.network, bound.String()), "B:", "5")
			}
			if perLoop {
				// b got one socket per loop: each loop accepted from its own.
				st := b.Stats()
				if st.Loops[0].ConnsAccepted+st.Loops[1].ConnsAccepted < 4 {
					t.Errorf("b accepted %d+%d", st.Loops[0].ConnsAccepted, st.Loops[1].ConnsAccepted)
				}
			}
			if fds, err := a.ListenerFds(); err == nil && len(fds) != 0 {
				t.Errorf("ListenerFds after ReleaseListeners = %v", fds)
			}
		})
	}
}

// TestListenFdSpreadsOneSocket checks that a single inherited socket on a multi-loop server
// with PerLoopListeners is still served by every loop (handed round-robin), not only the loop
// that accepts.
func TestListenFdSpreadsOneSocket(t *testing.T) {
	fd, addr := rawListener(t, "tcp")
	s, err := NewServer(echoHandler(), WithLoops(2), WithLoadBalancing(PerLoopListeners))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ListenFd(fd); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		roundTrip(t, dial(t, "tcp", addr), "", "x")
	}
	st := s.Stats()
	if st.Loops[0].ConnsAccepted == 0 || st.Loops[1].ConnsAccepted == 0 {
		t.Errorf("connections per loop %d, %d: want both used", st.Loops[0].ConnsAccepted, st.Loops[1].ConnsAccepted)
	}
}

func TestListenerFdsStates(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	fds, err := s.ListenerFds() // before Start: the server's own sockets
	if err != nil || len(fds) != 1 {
		t.Fatalf("ListenerFds before Start = %v, %v", fds, err)
	}
	unix.Close(fds[0].Fd)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var onLoop error
	done := make(chan struct{})
	s.Loops()[0].Post(func() {
		_, onLoop = s.ListenerFds()
		close(done)
	})
	<-done
	if !errors.Is(onLoop, ErrCalledOnLoop) {
		t.Errorf("ListenerFds on a loop = %v, want ErrCalledOnLoop", onLoop)
	}
	s.Close()
	if _, err := s.ListenerFds(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenerFds after Close = %v", err)
	}
	if err := s.ReleaseListeners(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ReleaseListeners after Close = %v", err)
	}

	// Released before Start: closed and forgotten, Start serves nothing and fails nothing.
	s2, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	a, err := s2.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.ReleaseListeners(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", a.String()); err == nil {
		c.Close()
		t.Error("a released listener still accepts")
	}
}

// TestHandOffToChildProcess passes the sockets to a new process the way a binary upgrade does
// (exec.Cmd.ExtraFiles): the child serves them as descriptors 3.., and the parent's sockets
// stay non-blocking (exec calls File.Fd, which would make a socket blocking for every holder
// if os.File had made it non-blocking itself).
func TestHandOffToChildProcess(t *testing.T) {
	s, err := NewServer(tagHandler("P:"), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	fds, err := s.ListenerFds()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=serve-fd", "REACTOR_TEST_N="+fmt.Sprint(len(fds)))
	for _, d := range fds {
		f := d.File()
		if !strings.HasPrefix(f.Name(), "tcp:127.0.0.1:") {
			t.Errorf("file name %q", f.Name())
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		defer f.Close()
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "READY\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	// The parent's own sockets are still non-blocking.
	var own []int
	done := make(chan struct{})
	s.Loops()[0].Post(func() {
		for fd := range s.Loops()[0].others {
			own = append(own, fd)
		}
		close(done)
	})
	<-done
	for _, fd := range own {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("parent socket %d flags %#x, %v: want O_NONBLOCK", fd, fl, err)
		}
	}
	if err := s.ReleaseListeners(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		roundTrip(t, dial(t, "tcp", addr.String()), "C:", "up")
	}
}

// serveFdChild serves descriptors 3..3+N-1 (REACTOR_TEST_N) with tag "C:", prints READY and
// runs until stdin closes.
func serveFdChild() int {
	var n int
	fmt.Sscan(os.Getenv("REACTOR_TEST_N"), &n)
	fds := make([]int, n)
	for i := range fds {
		fds[i] = 3 + i
	}
	s, err := NewServer(tagHandler("C:"), WithLoops(1))
	if err == nil {
		_, err = s.ListenFd(fds...)
	}
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	return 0
}
