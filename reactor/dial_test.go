package reactor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// clientRec is a per-connection handler that records what happens to a dialed or adopted
// connection; the test goroutine reads it through channels and a locked buffer.
type clientRec struct {
	onOpen func(c *Conn)
	onData func(c *Conn, in []byte) int // default: record and consume everything

	opened chan *Conn
	closed chan error
	mu     sync.Mutex
	got    bytes.Buffer
	order  []string // "open", "data", "close", in callback order
}

func newClientRec() *clientRec {
	return &clientRec{opened: make(chan *Conn, 1), closed: make(chan error, 2)}
}

func (r *clientRec) note(s string) {
	r.mu.Lock()
	r.order = append(r.order, s)
	r.mu.Unlock()
}

func (r *clientRec) OnOpen(c *Conn) {
	r.note("open")
	if r.onOpen != nil {
		r.onOpen(c)
	}
	r.opened <- c
}

func (r *clientRec) OnData(c *Conn, in []byte) int {
	r.mu.Lock()
	r.order = append(r.order, "data")
	r.got.Write(in)
	r.mu.Unlock()
	if r.onData != nil {
		return r.onData(c, in)
	}
	return len(in)
}

func (r *clientRec) OnClose(c *Conn, err error) {
	r.note("close")
	r.closed <- err
}

func (r *clientRec) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

func (r *clientRec) waitOpen(t *testing.T) *Conn {
	t.Helper()
	select {
	case c := <-r.opened:
		return c
	case err := <-r.closed:
		select {
		case c := <-r.opened: // opened, then closed before we looked
			r.closed <- err
			return c
		default:
		}
		t.Fatalf("closed instead of opened: %v", err)
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnOpen not called")
	}
	return nil
}

func (r *clientRec) waitClose(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.closed:
		return err
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnClose not called")
	}
	return nil
}

// runLoops starts a reactor server with no listener: a home for dialed connections. The
// server's own Handler must never be called.
func runLoops(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(HandlerFuncs{Open: func(c *Conn) { panic("server handler used for a dialed connection") }}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// echoServer is a net/http-free upstream: a Go listener echoing every connection.
func echoServer(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Plain reads and writes: TCP-to-TCP io.Copy would splice(2) through pipes
				// the runtime caches, which the fd-leak check would count.
				io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
			}()
		}
	}()
	return ln
}

func TestDialEcho(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ln := echoServer(t, "tcp", "127.0.0.1:0")
			s := runLoops(t, WithPoller(b.Name), WithLoops(2))
			rec := newClientRec()
			rec.onOpen = func(c *Conn) { c.Write([]byte("hello")) }
			rec.onData = func(c *Conn, in []byte) int {
				if bytes.Contains(in, []byte("hello")) {
					c.Close()
				}
				return len(in)
			}
			c, err := s.Dial("tcp", ln.Addr().String(), rec, DialConnContext("mine"))
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.waitOpen(t); got != c {
				t.Fatal("OnOpen got another Conn than Dial returned")
			}
			if err := rec.waitClose(t); err != nil {
				t.Fatalf("OnClose err = %v, want nil (local Close)", err)
			}
			if got := rec.received(); got != "hello" {
				t.Fatalf("received %q", got)
			}
			rec.mu.Lock()
			order := strings.Join(rec.order, ",")
			rec.mu.Unlock()
			if order != "open,data,close" {
				t.Fatalf("callbacks %s", order)
			}
			testsupport.Eventually(t, 0, "stats", func() bool {
				st := s.Stats()
				return st.ConnsDialed == 1 && st.ConnsOpen == 0 && st.ConnsClosed == 1 && st.BytesOut == 5 && st.BytesIn == 5 && st.ConnsAccepted == 0
			})
		})
	}
}

// TestDialWritesBeforeOpen: bytes written right after Dial, before the connection exists,
// are sent once it is established; the Context set by DialConnContext is there in OnOpen.
func TestDialWritesBeforeOpen(t *testing.T) {
	ln := echoServer(t, "tcp", "127.0.0.1:0")
	s := runLoops(t, WithLoops(1))
	rec := newClientRec()
	ctxSeen := make(chan any, 1)
	rec.onOpen = func(c *Conn) { ctxSeen <- c.Context() }
	l := s.Loops()[0]
	done := make(chan error, 1)
	l.Post(func() {
		c, err := l.Dial("tcp", ln.Addr().String(), rec, DialConnContext(42))
		if err == nil {
			_, err = c.Write([]byte("early"))
		}
		done <- err
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.waitOpen(t)
	if v := <-ctxSeen; v != 42 {
		t.Fatalf("Context in OnOpen = %v", v)
	}
	testsupport.Eventually(t, 0, "echo of the early write", func() bool { return rec.received() == "early" })
}

func TestDialUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "up.sock")
	echoServer(t, "unix", path)
	s := runLoops(t, WithLoops(1))
	rec := newClientRec()
	rec.onOpen = func(c *Conn) { c.Write([]byte("over unix")) }
	if _, err := s.Dial("unix", path, rec); err != nil {
		t.Fatal(err)
	}
	c := rec.waitOpen(t)
	testsupport.Eventually(t, 0, "echo", func() bool { return rec.received() == "over unix" })
	c.Close()
	if err := rec.waitClose(t); err != nil {
		t.Fatal(err)
	}
}

// TestDialHostName: a host name is looked up off the loop and the addresses are tried in
// order: "localhost" may resolve to ::1 first while the listener has only 127.0.0.1.
func TestDialHostName(t *testing.T) {
	ln := echoServer(t, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := runLoops(t, WithLoops(1))
	rec := newClientRec()
	rec.onOpen = func(c *Conn) { c.Write([]byte("by name")) }
	if _, err := s.Dial("tcp", "localhost:"+port, rec); err != nil {
		t.Fatal(err)
	}
	c := rec.waitOpen(t)
	testsupport.Eventually(t, 0, "echo", func() bool { return rec.received() == "by name" })
	c.Close()
	rec.waitClose(t)
}

func TestDialFailures(t *testing.T) {
	// A port nothing listens on: bind one, note it, close it.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := free.Addr().String()
	free.Close()
	tests := []struct {
		name, network, addr string
		want                error
	}{
		{"refused", "tcp", refused, unix.ECONNREFUSED},
		{"refused by name", "tcp", "localhost:" + refused[strings.LastIndexByte(refused, ':')+1:], unix.ECONNREFUSED},
		{"no such unix socket", "unix", filepath.Join(t.TempDir(), "none.sock"), unix.ENOENT},
		{"unknown host", "tcp", "no-such-host.invalid:80", nil},
	}
	for _, b := range backends(t) {
		for _, tc := range tests {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				s := runLoops(t, WithPoller(b.Name), WithLoops(1))
				rec := newClientRec()
				if _, err := s.Dial(tc.network, tc.addr, rec); err != nil {
					t.Fatal(err)
				}
				err := rec.waitClose(t)
				if err == nil {
					t.Fatal("OnClose err = nil for a failed dial")
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("OnClose err = %v, want %v", err, tc.want)
				}
				var dnsErr *net.DNSError
				if tc.want == nil && !errors.As(err, &dnsErr) {
					t.Fatalf("OnClose err = %v, want a *net.DNSError", err)
				}
				if !strings.Contains(err.Error(), tc.addr) {
					t.Fatalf("error %q does not name the address", err)
				}
				select {
				case <-rec.opened:
					t.Fatal("OnOpen after a failed dial")
				default:
				}
				testsupport.Eventually(t, 0, "stats", func() bool {
					st := s.Stats()
					return st.DialsFailed == 1 && st.ConnsOpen == 0 && st.ConnsDialed == 0
				})
			})
		}
	}
}

// fullBacklog returns the address of a listener that accepts nothing and whose backlog is full,
// so a further connect hangs (Linux drops the SYN, the client retransmits).
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := testSocket(unix.AF_INET, unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}).String()
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, testsupport.Scale(200*time.Millisecond))
		if err != nil {
			return addr // this one hung: the backlog is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("could not fill the listen backlog")
	return ""
}

func TestDialTimeout(t *testing.T) {
	addr := fullBacklog(t)
	s := runLoops(t, WithLoops(1))
	rec := newClientRec()
	start := time.Now()
	c, err := s.Dial("tcp", addr, rec, DialTimeout(testsupport.Scale(100*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	// Bytes written before the connection exists wait for it, and go with it.
	if err := c.AsyncWrite([]byte("never sent")); err != nil {
		t.Fatal(err)
	}
	err = rec.waitClose(t)
	if !errors.Is(err, ErrDialTimeout) {
		t.Fatalf("OnClose err = %v, want ErrDialTimeout", err)
	}
	if d := time.Since(start); d < testsupport.Scale(100*time.Millisecond) {
		t.Fatalf("timed out after %v", d)
	}
	testsupport.Eventually(t, 0, "timer and connection gone", func() bool {
		st := s.Stats()
		return st.ConnsOpen == 0 && st.Loops[0].Timers == 0 && st.DialsFailed == 1
	})
}

// TestDialClosedEarly: Close before the connection is established abandons the dial: OnClose
// with nil, never OnOpen. Server.Close while connecting reports ErrServerClosed.
func TestDialClosedEarly(t *testing.T) {
	addr := fullBacklog(t)
	t.Run("Close", func(t *testing.T) {
		s := runLoops(t, WithLoops(1))
		rec := newClientRec()
		c, err := s.Dial("tcp", addr, rec)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := rec.waitClose(t); err != nil {
			t.Fatalf("OnClose err = %v, want nil", err)
		}
		testsupport.Eventually(t, 0, "connection gone", func() bool { return s.Stats().ConnsOpen == 0 })
	})
	t.Run("Server.Close", func(t *testing.T) {
		s := runLoops(t, WithLoops(1))
		rec := newClientRec()
		if _, err := s.Dial("tcp", addr, rec); err != nil {
			t.Fatal(err)
		}
		testsupport.Eventually(t, 0, "connecting", func() bool { return s.Stats().ConnsOpen == 1 })
		s.Close()
		if err := rec.waitClose(t); !errors.Is(err, ErrServerClosed) {
			t.Fatalf("OnClose err = %v, want ErrServerClosed", err)
		}
	})
	t.Run("Server.Close during lookup", func(t *testing.T) {
		s := runLoops(t, WithLoops(1))
		rec := newClientRec()
		// A lookup that cannot finish before Close: a name under .invalid still goes to the
		// resolver (it may fail fast, in which case OnClose reports that failure instead).
		if _, err := s.Dial("tcp", "lookup-pending.invalid:80", rec); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := rec.waitClose(t); err == nil {
			t.Fatal("OnClose err = nil")
		}
	})
}

func TestDialArguments(t *testing.T) {
	s := runLoops(t, WithLoops(1))
	rec := newClientRec()
	tests := []struct {
		name          string
		network, addr string
		h             Handler
		opts          []DialOption
		want          error
	}{
		{"nil handler", "tcp", "127.0.0.1:1", nil, nil, ErrInvalidArgument},
		{"udp", "udp", "127.0.0.1:1", rec, nil, ErrUnsupportedNetwork},
		{"no port", "tcp", "127.0.0.1", rec, nil, ErrBadAddress},
		{"port 0", "tcp", "127.0.0.1:0", rec, nil, ErrBadAddress},
		{"port too large", "tcp", "127.0.0.1:70000", rec, nil, ErrBadAddress},
		{"v6 on tcp4", "tcp4", "[::1]:80", rec, nil, ErrBadAddress},
		{"empty unix path", "unix", "", rec, nil, ErrBadAddress},
		{"negative timeout", "tcp", "127.0.0.1:1", rec, []DialOption{DialTimeout(-1)}, ErrInvalidOption},
		{"nil option", "tcp", "127.0.0.1:1", rec, []DialOption{nil}, ErrInvalidOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.Dial(tc.network, tc.addr, tc.h, tc.opts...)
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("Dial = %v, %v; want %v", c, err, tc.want)
			}
		})
	}
	select {
	case err := <-rec.closed:
		t.Fatalf("callback after a refused Dial: %v", err)
	default:
	}
	fresh, _ := NewServer(HandlerFuncs{})
	if _, err := fresh.Dial("tcp", "127.0.0.1:1", rec); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Dial before Start: %v", err)
	}
	fresh.Close()
	if _, err := s.Loops()[0].AdoptFd(-1, rec); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("AdoptFd(-1): %v", err)
	}
	if _, err := s.Adopt(nil, rec); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Adopt(nil): %v", err)
	}
}

// writableRec adds OnWritable and OnReadEOF to clientRec: the optional interfaces of a
// per-connection handler are honoured like the server's.
type writableRec struct {
	*clientRec
	writable chan struct{}
	readEOF  chan struct{}
	keepOpen bool
}

func (w *writableRec) OnWritable(c *Conn) {
	select {
	case w.writable <- struct{}{}:
	default:
	}
}

func (w *writableRec) OnReadEOF(c *Conn) bool {
	close(w.readEOF)
	if w.keepOpen {
		c.Write([]byte("late answer"))
		c.Close()
	}
	return w.keepOpen
}

// TestDialedBackpressure: a dialed connection whose peer does not read stops being read past
// the high-water mark, and OnWritable fires once the peer drains it.
func TestDialedBackpressure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	s := runLoops(t, WithLoops(1), WithWatermarks(256<<10, 0))
	big := bytes.Repeat([]byte("w"), 8<<20)
	rec := &writableRec{clientRec: newClientRec(), writable: make(chan struct{}, 1), readEOF: make(chan struct{})}
	full := make(chan bool, 1)
	rec.onOpen = func(c *Conn) {
		c.Write(big)
		full <- c.OutputFull()
	}
	if _, err := s.Dial("tcp", ln.Addr().String(), rec); err != nil {
		t.Fatal(err)
	}
	rec.waitOpen(t)
	if !<-full {
		t.Fatal("8 MiB pending is not OutputFull")
	}
	peer := <-accepted
	defer peer.Close()
	select {
	case <-rec.writable:
		t.Fatal("OnWritable before the peer read anything")
	default:
	}
	peer.SetDeadline(time.Now().Add(testsupport.Scale(20 * time.Second)))
	if n, err := io.ReadFull(peer, make([]byte, len(big))); err != nil || n != len(big) {
		t.Fatalf("peer read %d: %v", n, err)
	}
	select {
	case <-rec.writable:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnWritable not called after the drain")
	}
}

// TestDialedHalfClose: the peer's half-close reaches a dialed connection like an accepted one:
// OnClose(io.EOF) by default, or the ReadEOFHandler keeps it open to answer.
func TestDialedHalfClose(t *testing.T) {
	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "close", true: "keep-open"}[keep]
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			answer := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.Write([]byte("bye"))
				c.(*net.TCPConn).CloseWrite()
				b, _ := io.ReadAll(c)
				answer <- string(b)
			}()
			s := runLoops(t, WithLoops(1))
			rec := &writableRec{clientRec: newClientRec(), writable: make(chan struct{}, 1), readEOF: make(chan struct{}), keepOpen: keep}
			if _, err := s.Dial("tcp", ln.Addr().String(), rec); err != nil {
				t.Fatal(err)
			}
			rec.waitOpen(t)
			err = rec.waitClose(t)
			<-rec.readEOF
			if keep {
				if err != nil {
					t.Fatalf("OnClose err = %v, want nil (handler closed)", err)
				}
				if got := <-answer; got != "late answer" {
					t.Fatalf("peer got %q", got)
				}
			} else if err != io.EOF {
				t.Fatalf("OnClose err = %v, want io.EOF", err)
			}
			if rec.received() != "bye" {
				t.Fatalf("received %q", rec.received())
			}
		})
	}
}

func TestDialedIdleTimeoutAndShutdown(t *testing.T) {
	ln := echoServer(t, "tcp", "127.0.0.1:0")
	t.Run("idle timeout", func(t *testing.T) {
		s := runLoops(t, WithLoops(1))
		rec := newClientRec()
		rec.onOpen = func(c *Conn) { c.SetIdleTimeout(testsupport.Scale(50 * time.Millisecond)) }
		if _, err := s.Dial("tcp", ln.Addr().String(), rec); err != nil {
			t.Fatal(err)
		}
		rec.waitOpen(t)
		if err := rec.waitClose(t); !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("OnClose err = %v, want ErrIdleTimeout", err)
		}
	})
	t.Run("Shutdown closes an idle dialed connection", func(t *testing.T) {
		s := runLoops(t, WithLoops(1))
		rec := newClientRec()
		if _, err := s.Dial("tcp", ln.Addr().String(), rec); err != nil {
			t.Fatal(err)
		}
		rec.waitOpen(t)
		ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := rec.waitClose(t); err != nil {
			t.Fatalf("OnClose err = %v, want nil", err)
		}
	})
	t.Run("Shutdown waits for a busy dialed connection", func(t *testing.T) {
		s := runLoops(t, WithLoops(1))
		rec := newClientRec()
		rec.onData = func(c *Conn, in []byte) int { return 0 } // keeps its input: busy
		rec.onOpen = func(c *Conn) { c.Write([]byte("x")) }
		if _, err := s.Dial("tcp", ln.Addr().String(), rec); err != nil {
			t.Fatal(err)
		}
		c := rec.waitOpen(t)
		testsupport.Eventually(t, 0, "echo kept", func() bool { return rec.received() == "x" })
		done := make(chan error, 1)
		go func() { done <- s.Shutdown(context.Background()) }()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) while the dialed connection was busy", err)
		case err := <-rec.closed:
			t.Fatalf("busy connection closed: %v", err)
		case <-time.After(testsupport.Scale(100 * time.Millisecond)):
		}
		c.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestAdopt(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ln := echoServer(t, "tcp", "127.0.0.1:0")
			s := runLoops(t, WithPoller(b.Name), WithLoops(1))
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			rec := newClientRec()
			rec.onOpen = func(c *Conn) { c.Write([]byte("adopted")) }
			c, err := s.Adopt(nc, rec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Write([]byte("x")); err == nil {
				t.Fatal("the adopted net.Conn is still usable")
			}
			rec.waitOpen(t)
			testsupport.Eventually(t, 0, "echo", func() bool { return rec.received() == "adopted" })
			c.Close()
			rec.waitClose(t)
			testsupport.Eventually(t, 0, "stats", func() bool {
				st := s.Stats()
				return st.ConnsAdopted == 1 && st.ConnsOpen == 0
			})
		})
	}
}

func TestAdoptFd(t *testing.T) {
	s := runLoops(t, WithLoops(1))
	l := s.Loops()[0]
	t.Run("socketpair", func(t *testing.T) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
		peer := os.NewFile(uintptr(fds[1]), "peer")
		defer peer.Close()
		rec := newClientRec()
		if _, err := l.AdoptFd(fds[0], rec); err != nil {
			t.Fatal(err)
		}
		c := rec.waitOpen(t)
		if _, err := peer.Write([]byte("to the loop")); err != nil {
			t.Fatal(err)
		}
		testsupport.Eventually(t, 0, "data", func() bool { return rec.received() == "to the loop" })
		c.Close()
		rec.waitClose(t)
		if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("peer read after Close: %d %v", n, err)
		}
	})
	for _, tc := range []struct {
		name string
		open func() (int, error)
	}{
		{"udp socket", func() (int, error) { return testSocket(unix.AF_INET, unix.SOCK_DGRAM) }},
		{"listening socket", func() (int, error) {
			fd, err := testSocket(unix.AF_INET, unix.SOCK_STREAM)
			if err == nil {
				unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
				err = unix.Listen(fd, 1)
			}
			return fd, err
		}},
		{"regular file", func() (int, error) {
			return unix.Open(filepath.Join(t.TempDir(), "f"), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if _, err := l.AdoptFd(fd, newClientRec()); !errors.Is(err, ErrUnsupportedNetwork) {
				t.Fatalf("AdoptFd = %v, want ErrUnsupportedNetwork", err)
			}
		})
	}
}

// TestServerAndClientOnOneLoop: a loop serving accepted connections dials out too — the
// point of per-connection handlers. An accepted connection's request is relayed to an
// upstream over a dialed connection of the same loop, and the answer comes back.
func TestServerAndClientOnOneLoop(t *testing.T) {
	up := echoServer(t, "tcp", "127.0.0.1:0")
	var relay HandlerFuncs
	relay.Data = func(front *Conn, in []byte) int {
		msg := append([]byte("via upstream: "), in...)
		back := &clientRec{opened: make(chan *Conn, 1), closed: make(chan error, 1)}
		back.onData = func(c *Conn, b []byte) int {
			front.Write(b)
			c.Close()
			return len(b)
		}
		c, err := front.Loop().Dial("tcp", up.Addr().String(), back)
		if err != nil {
			front.Write([]byte(err.Error()))
			return len(in)
		}
		c.Write(msg)
		return len(in)
	}
	_, addr := startServer(t, relay, WithLoops(1))
	c := dial(t, "tcp", addr)
	c.Write([]byte("ping"))
	want := "via upstream: ping"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v", got, err)
	}
}

// testSocket opens a socket marked close-on-exec (the tests re-execute the binary), with the
// calls every platform has.
func testSocket(family, typ int) (int, error) {
	fd, err := unix.Socket(family, typ, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	return fd, err
}
