package reactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
	"github.com/reactord/reactord/internal/testsupport"
)

// closeRecorder returns a handler built on h whose OnClose errors arrive on the channel.
func closeRecorder(h HandlerFuncs) (HandlerFuncs, chan error) {
	ch := make(chan error, 16)
	inner := h.Close
	h.Close = func(c *Conn, err error) {
		if inner != nil {
			inner(c, err)
		}
		ch <- err
	}
	return h, ch
}

func waitClose(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnClose not called")
		return nil
	}
}

func TestHalfCloseFlushesThenCloses(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			// The reply is larger than socket buffers, so it is still pending when EOF arrives.
			reply := bytes.Repeat([]byte("r"), 4<<20)
			h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int {
				c.Write(reply)
				return len(in)
			}})
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1), WithWatermarks(8<<20, 0))
			c := dial(t, "tcp", addr)
			c.Write([]byte("x"))
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if len(got) != len(reply) {
				t.Fatalf("got %d bytes, want %d", len(got), len(reply))
			}
			if err := waitClose(t, closed); err != io.EOF {
				t.Fatalf("OnClose err = %v, want io.EOF", err)
			}
			select {
			case err := <-closed:
				t.Fatalf("second OnClose: %v", err)
			default:
			}
		})
	}
}

// asyncEOFHandler answers each input on another goroutine, the way a codec with a worker pool
// does, and keeps the connection open past the peer's half-close until the answer is sent.
type asyncEOFHandler struct {
	HandlerFuncs
	release chan struct{}
	sawEOF  chan struct{}
}

func (h *asyncEOFHandler) OnData(c *Conn, in []byte) int {
	msg := append([]byte("answer to "), in...)
	go func() {
		<-h.release
		c.AsyncWrite(msg)
		c.Close()
	}()
	return len(in)
}

func (h *asyncEOFHandler) OnReadEOF(c *Conn) bool {
	close(h.sawEOF)
	return true
}

func TestReadEOFHandlerKeepsConnForLateAnswer(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			base, closed := closeRecorder(HandlerFuncs{})
			h := &asyncEOFHandler{HandlerFuncs: base, release: make(chan struct{}), sawEOF: make(chan struct{})}
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1))
			c := dial(t, "tcp", addr)
			c.Write([]byte("q1"))
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// The answer is released only after the loop has seen the EOF, so without
			// OnReadEOF the connection would already be gone.
			select {
			case <-h.sawEOF:
			case <-time.After(testsupport.Scale(5 * time.Second)):
				t.Fatal("OnReadEOF was not called")
			}
			close(h.release)
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if string(got) != "answer to q1" {
				t.Fatalf("got %q", got)
			}
			if err := waitClose(t, closed); err != nil {
				t.Fatalf("OnClose err = %v, want nil (local Close)", err)
			}
		})
	}
}

func TestResetReportsECONNRESET(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			opened := make(chan struct{}, 1)
			h, closed := closeRecorder(HandlerFuncs{
				Open: func(c *Conn) { opened <- struct{}{} },
			})
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1))
			c := dial(t, "tcp", addr)
			<-opened
			// SO_LINGER with a zero timeout: close sends RST instead of FIN.
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			err := waitClose(t, closed)
			if !errors.Is(err, unix.ECONNRESET) {
				t.Fatalf("OnClose err = %v, want ECONNRESET", err)
			}
		})
	}
}

// TestTimeouts: traffic keeps a connection with an idle or read timeout open for longer than
// the timeout, and once the traffic stops the connection is closed with the matching error.
//
// "Traffic keeps it open" is only a fair claim while every pause in the traffic is shorter
// than the timeout, and on a busy machine the test itself can be descheduled for longer than
// that. So the client timestamps each round trip and judges a close during the traffic by the
// longest pause the server could have seen: shorter than the timeout, the close is a bug; not
// shorter, the attempt proves nothing and is repeated with the timeout doubled.
func TestTimeouts(t *testing.T) {
	tests := []struct {
		name string
		set  func(c *Conn, d time.Duration)
		want error
	}{
		{"idle", func(c *Conn, d time.Duration) { c.SetIdleTimeout(d) }, ErrIdleTimeout},
		{"read", func(c *Conn, d time.Duration) { c.SetReadTimeout(d) }, ErrReadTimeout},
		{"read-before-idle", func(c *Conn, d time.Duration) {
			c.SetIdleTimeout(time.Hour)
			c.SetReadTimeout(d)
		}, ErrReadTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const attempts = 4
			d := testsupport.Scale(50 * time.Millisecond)
			for i := 1; ; i++ {
				stall := timeoutAttempt(t, d, tc.set, tc.want)
				if stall == 0 {
					return
				}
				if i == attempts {
					t.Fatalf("%d attempts, the last with a %v timeout, each stalled for longer than its timeout (last %v): too slow a machine; raise %s",
						attempts, d, stall, testsupport.EnvTimeScale)
				}
				t.Logf("attempt %d: a pause of %v reached the %v timeout (the machine stalled); again with %v", i, stall, d, 2*d)
				d *= 2
			}
		})
	}
}

// timeoutAttempt runs one attempt of TestTimeouts with timeout d. It returns 0 when the
// attempt passed (it fails the test itself on a wrong outcome), or the longest pause the
// server could have seen when a close during the traffic cannot be blamed on the server.
func timeoutAttempt(t *testing.T, d time.Duration, set func(*Conn, time.Duration), want error) time.Duration {
	t.Helper()
	h, closed := closeRecorder(HandlerFuncs{Open: func(c *Conn) { set(c, d) }, Data: func(c *Conn, in []byte) int {
		c.Write(in)
		return len(in)
	}})
	s, err := NewServer(h, WithLoops(1))
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
	// The server stamps activity with its loop clock when it reads (and, for the idle
	// timeout, writes) a byte: always between our sending it and our reading the echo. So the
	// longest pause it can have seen between two stamps is bounded by the time from one send
	// to the next echo, and before the first stamp by the time from dialling to the first echo
	// (the timer is armed in OnOpen, after the dial began).
	prev := time.Now()
	c := dial(t, "tcp", addr.String())
	var longest time.Duration
	var first time.Time
	buf := make([]byte, 1)
	for {
		sent := time.Now()
		_, werr := c.Write([]byte("p"))
		_, rerr := io.ReadFull(c, buf)
		got := time.Now()
		longest = max(longest, got.Sub(prev))
		if werr != nil || rerr != nil {
			if longest < d {
				t.Fatalf("connection closed during traffic (%v, %v) although no pause reached the %v timeout (longest %v)", werr, rerr, d, longest)
			}
			return longest
		}
		if first.IsZero() {
			first = got
		}
		prev = sent
		// Stop once a byte was sent more than d after the first echo: without the traffic
		// resetting the timer, the connection would have been closed before that byte.
		if sent.Sub(first) > d {
			break
		}
		time.Sleep(d / 5) // paces the traffic; the pauses are measured, not assumed
	}
	select {
	case err := <-closed:
		if longest < d {
			t.Fatalf("closed during traffic (%v) although no pause reached the %v timeout (longest %v)", err, d, longest)
		}
		return longest
	default:
	}
	// The traffic stops: the timeout closes the connection, with the matching error.
	if err := waitClose(t, closed); !errors.Is(err, want) {
		t.Fatalf("OnClose err = %v, want %v", err, want)
	}
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("client read after timeout: %v, want EOF", err)
	}
	testsupport.Eventually(t, 5*time.Second, "timer removed", func() bool { return s.Stats().Loops[0].Timers == 0 })
	return 0
}

func TestDefaultIdleTimeoutOption(t *testing.T) {
	h, closed := closeRecorder(HandlerFuncs{})
	_, addr := startServer(t, h, WithIdleTimeout(30*time.Millisecond))
	dial(t, "tcp", addr)
	if err := waitClose(t, closed); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("OnClose err = %v, want ErrIdleTimeout", err)
	}
}

func TestBadConsumedClosesWithoutPanic(t *testing.T) {
	for _, ret := range []int{-1, 1 << 30} {
		t.Run(fmt.Sprint(ret), func(t *testing.T) {
			h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int { return ret }})
			_, addr := startServer(t, h, WithLoops(1))
			c := dial(t, "tcp", addr)
			c.Write([]byte("hello"))
			if err := waitClose(t, closed); !errors.Is(err, ErrBadConsumed) {
				t.Fatalf("OnClose err = %v, want ErrBadConsumed", err)
			}
		})
	}
}

func TestLocalCloseFlushesAndReportsNil(t *testing.T) {
	h, closed := closeRecorder(HandlerFuncs{
		Open: func(c *Conn) {
			c.Write([]byte("bye"))
			c.Close()
			if _, err := c.Write([]byte("more")); !errors.Is(err, ErrConnClosed) {
				panic(fmt.Sprintf("Write after Close: %v", err))
			}
		},
	})
	s, addr := startServer(t, h)
	c := dial(t, "tcp", addr)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := waitClose(t, closed); err != nil {
		t.Fatalf("OnClose err = %v, want nil", err)
	}
	testsupport.Eventually(t, 5*time.Second, "closed count", func() bool {
		st := s.Stats()
		return st.ConnsOpen == 0 && st.ConnsClosed == 1
	})
}

func TestAsyncWriteFromManyGoroutinesStaysContiguous(t *testing.T) {
	const writers, perWriter, size = 100, 20, 300
	conns := make(chan *Conn, 1)
	_, addr := startServer(t, HandlerFuncs{Open: func(c *Conn) { conns <- c }}, WithLoops(1))
	cl := dial(t, "tcp", addr)
	c := <-conns
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte(w)}, size)
			for i := 0; i < perWriter; i++ {
				if err := c.AsyncWrite(msg); err != nil {
					t.Errorf("AsyncWrite: %v", err)
					return
				}
			}
		}()
	}
	got := make([]byte, writers*perWriter*size)
	if _, err := io.ReadFull(cl, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	wg.Wait()
	for off := 0; off < len(got); off += size {
		rec := got[off : off+size]
		if bytes.Count(rec, rec[:1]) != size {
			t.Fatalf("record at %d is interleaved", off)
		}
	}
	c.Close()
	if _, err := cl.Read(got[:1]); err != io.EOF {
		t.Fatalf("after Close: %v, want EOF", err)
	}
	if err := c.AsyncWrite([]byte("x")); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("AsyncWrite after Close: %v", err)
	}
}

func TestPauseResumeRedeliversTail(t *testing.T) {
	// The handler consumes one line per call and pauses; a goroutine resumes it later. The
	// kept lines must come back without any new input.
	conns := make(chan *Conn, 1)
	h := HandlerFuncs{
		Open: func(c *Conn) { conns <- c },
		Data: func(c *Conn, in []byte) int {
			i := bytes.IndexByte(in, '\n')
			if i < 0 {
				return 0
			}
			c.Write(bytes.ToUpper(in[:i+1]))
			c.PauseRead()
			go func() {
				c.Loop().Post(func() { c.ResumeRead() })
			}()
			return i + 1
		},
	}
	_, addr := startServer(t, h, WithLoops(1))
	cl := dial(t, "tcp", addr)
	<-conns
	cl.Write([]byte("one\ntwo\nthree\n"))
	want := "ONE\nTWO\nTHREE\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(cl, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	// Each request is answered by a worker goroutine while the connection is paused: Shutdown
	// must wait for the answer to be delivered, then close the connection.
	release := make(chan struct{})
	requested := make(chan struct{}, 1)
	h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int {
		c.PauseRead()
		requested <- struct{}{}
		go func() {
			<-release
			c.Loop().Post(func() {
				c.Write([]byte("done"))
				c.ResumeRead()
			})
		}()
		return len(in)
	}})
	s, addr := startServer(t, h, WithLoops(2))
	busy := dial(t, "tcp", addr)
	idle := dial(t, "tcp", addr)
	busy.Write([]byte("work"))
	<-requested
	testsupport.Eventually(t, 5*time.Second, "both accepted", func() bool { return s.Stats().ConnsOpen == 2 })

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The idle connection is closed first, with a nil error.
	if err := waitClose(t, closed); err != nil {
		t.Fatalf("idle close err = %v", err)
	}
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle conn read: %v, want EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned before the in-flight request finished: %v", err)
	default:
	}
	// New connections are refused once listeners are closed.
	testsupport.Eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	got, err := io.ReadAll(busy)
	if err != nil || string(got) != "done" {
		t.Fatalf("in-flight reply %q, %v", got, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Serve(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int {
		c.PauseRead() // never resumed: the request never finishes
		return len(in)
	}})
	s, addr := startServer(t, h, WithLoops(1))
	c := dial(t, "tcp", addr)
	c.Write([]byte("stuck"))
	testsupport.Eventually(t, 5*time.Second, "request read", func() bool { return s.Stats().BytesIn == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if err := waitClose(t, closed); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("OnClose err = %v, want ErrServerClosed", err)
	}
}

func TestSendFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	content := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB, above the high-water mark
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		f, err := os.Open(path)
		if err != nil {
			c.CloseNow()
			return len(in)
		}
		c.Write([]byte("head:"))
		if err := c.SendFile(f, 10, int64(len(content))-20); err != nil {
			panic(err)
		}
		f.Close() // the reactor holds its own duplicate
		c.Write([]byte(":tail"))
		c.Close()
		return len(in)
	}}
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1))
			c := dial(t, "tcp", addr)
			c.Write([]byte("get"))
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			want := "head:" + string(content[10:len(content)-10]) + ":tail"
			if string(got) != want {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestSendFileArguments(t *testing.T) {
	errs := make(chan error, 3)
	h := HandlerFuncs{Open: func(c *Conn) {
		errs <- c.SendFile(nil, 0, 1)
		errs <- c.SendFile(os.Stdin, -1, 1)
		errs <- c.SendFile(os.Stdin, 0, -1)
	}}
	_, addr := startServer(t, h)
	dial(t, "tcp", addr)
	for i := 0; i < 3; i++ {
		if err := <-errs; !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("case %d: %v, want ErrInvalidArgument", i, err)
		}
	}
}

func TestUnixSocketEcho(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "echo.sock")
	if _, err := s.Listen("unix", path); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		c := dial(t, "unix", path)
		msg := strings.Repeat("unix", 10000)
		go c.Write([]byte(msg))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo: %v", err)
		}
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

func TestIPv6Loopback(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	_, addr := func() (*Server, string) {
		s, err := NewServer(echoHandler(), WithLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, a.String()
	}()
	c := dial(t, "tcp6", addr)
	c.Write([]byte("six"))
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "six" {
		t.Fatalf("echo: %q %v", got, err)
	}
}

func TestAddrs(t *testing.T) {
	remote := make(chan net.Addr, 1)
	local := make(chan net.Addr, 1)
	h := HandlerFuncs{Open: func(c *Conn) {
		remote <- c.RemoteAddr()
		local <- c.LocalAddr()
	}}
	s, addr := startServer(t, h)
	c := dial(t, "tcp", addr)
	if got := (<-remote).String(); got != c.LocalAddr().String() {
		t.Fatalf("RemoteAddr %s, want %s", got, c.LocalAddr())
	}
	if got := (<-local).String(); got != addr {
		t.Fatalf("LocalAddr %s, want %s", got, addr)
	}
	if a := s.Addrs(); len(a) != 1 || a[0].String() != addr {
		t.Fatalf("Addrs = %v", a)
	}
}

// TestRemoteAddrPort: the peer's address as accept reported it, over IPv4, IPv6 and a Unix
// socket, matches RemoteAddr and the client's own local address, and costs no allocation.
func TestRemoteAddrPort(t *testing.T) {
	tests := []struct {
		name, network, listen string
		needV6, unix          bool
	}{
		{"ipv4", "tcp", "127.0.0.1:0", false, false},
		{"ipv6", "tcp6", "[::1]:0", true, false},
		{"unix", "unix", "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needV6 && !sockopt.HaveIPv6() {
				t.Skip("no IPv6")
			}
			type seen struct {
				ap     netip.AddrPort
				addr   net.Addr
				allocs float64
			}
			got := make(chan seen, 1)
			h := HandlerFuncs{Open: func(c *Conn) {
				var s seen
				s.allocs = testing.AllocsPerRun(10, func() { s.ap = c.RemoteAddrPort() })
				s.addr = c.RemoteAddr()
				got <- s
			}}
			s, err := NewServer(h, WithLoops(1))
			if err != nil {
				t.Fatal(err)
			}
			listen := tc.listen
			if tc.unix {
				listen = filepath.Join(t.TempDir(), "s")
			}
			a, err := s.Listen(tc.network, listen)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			network := tc.network
			if network == "tcp6" {
				network = "tcp"
			}
			cl, err := net.Dial(network, a.String())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			r := <-got
			if tc.unix {
				if r.ap.IsValid() {
					t.Errorf("RemoteAddrPort of a Unix socket = %v, want none", r.ap)
				}
				if _, ok := r.addr.(*net.UnixAddr); !ok {
					t.Errorf("RemoteAddr of a Unix socket = %T %v", r.addr, r.addr)
				}
				return
			}
			want := cl.LocalAddr().(*net.TCPAddr).AddrPort()
			if r.ap != want {
				t.Errorf("RemoteAddrPort %v, want %v", r.ap, want)
			}
			if r.addr.String() != cl.LocalAddr().String() {
				t.Errorf("RemoteAddr %v, want %v", r.addr, cl.LocalAddr())
			}
			if r.allocs != 0 {
				t.Errorf("RemoteAddrPort allocates %.1f times", r.allocs)
			}
		})
	}
}

// TestResumeInsideOnDataRedelivers: pausing and resuming within one OnData call (a codec that
// pauses for a moment and finds it can go on) still gets the kept input back without new bytes.
func TestResumeInsideOnDataRedelivers(t *testing.T) {
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			return 0
		}
		c.Write(bytes.ToUpper(in[:i+1]))
		c.PauseRead()
		c.ResumeRead()
		return i + 1 // one line per call: the rest must be handed back
	}}
	_, addr := startServer(t, h, WithLoops(1))
	cl := dial(t, "tcp", addr)
	cl.Write([]byte("one\ntwo\nthree\n"))
	want := "ONE\nTWO\nTHREE\n"
	got := make([]byte, len(want))
	cl.SetReadDeadline(testsupport.Deadline(5 * time.Second))
	if _, err := io.ReadFull(cl, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v", got, err)
	}
}

// streamHandler answers any input with total bytes, written from OnWritable in pieces of
// chunk whenever the output has drained: the streaming pattern of WritableHandler.
type streamHandler struct {
	total, chunk int
	left         map[*Conn]int
}

func (h *streamHandler) OnOpen(c *Conn)             {}
func (h *streamHandler) OnClose(c *Conn, err error) {}
func (h *streamHandler) OnData(c *Conn, in []byte) int {
	h.left[c] = h.total
	h.OnWritable(c)
	return len(in)
}
func (h *streamHandler) OnWritable(c *Conn) {
	for h.left[c] > 0 && !c.OutputFull() {
		n := min(h.chunk, h.left[c])
		c.Write(make([]byte, n))
		h.left[c] -= n
	}
}

// TestOnWritableAfterSingleWriteDrain: output written from OnWritable that rises above the
// low-water mark and then leaves in one write must still trigger the next OnWritable, or a
// streaming handler stalls for good.
func TestOnWritableAfterSingleWriteDrain(t *testing.T) {
	const total = 4 << 20
	h := &streamHandler{total: total, chunk: 32 << 10, left: map[*Conn]int{}}
	// Watermarks far below the socket buffer: most flushes drain in one write.
	_, addr := startServer(t, h, WithLoops(1), WithWatermarks(64<<10, 16<<10))
	cl := dial(t, "tcp", addr)
	cl.Write([]byte("go"))
	cl.SetReadDeadline(testsupport.Deadline(10 * time.Second))
	n, err := io.CopyN(io.Discard, cl, total)
	if err != nil || n != total {
		t.Fatalf("read %d of %d: %v", n, total, err)
	}
}
