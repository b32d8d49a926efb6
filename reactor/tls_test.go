package reactor

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// openState records what a handler saw of its connection's TLS state in OnOpen.
type openState struct {
	mu     sync.Mutex
	states []*tls.ConnectionState
	opened int
	closed []error
}

func (o *openState) handler(data func(c *Conn, in []byte) int) HandlerFuncs {
	return HandlerFuncs{
		Open: func(c *Conn) {
			o.mu.Lock()
			o.opened++
			o.states = append(o.states, c.TLS())
			o.mu.Unlock()
		},
		Data: data,
		Close: func(c *Conn, err error) {
			o.mu.Lock()
			o.closed = append(o.closed, err)
			o.mu.Unlock()
		},
	}
}

func (o *openState) snapshot() (opened int, closed []error, states []*tls.ConnectionState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opened, append([]error(nil), o.closed...), append([]*tls.ConnectionState(nil), o.states...)
}

func echoData(c *Conn, in []byte) int {
	c.Write(in)
	return len(in)
}

// TestTLSEchoAndState: a request and its answer over TLS 1.2 and 1.3, on every poller; OnOpen
// sees the negotiated version, SNI, ALPN and cipher suite.
func TestTLSEchoAndState(t *testing.T) {
	for _, b := range backends(t) {
		for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			for _, m := range hsModes {
				t.Run(b.Name+"/"+tls.VersionName(vers)+"/"+m.name, func(t *testing.T) {
					var o openState
					cfg := serverTLS(t)
					cfg.NextProtos = []string{"echo/1", "http/1.1"}
					s, addr := startTLSServer(t, o.handler(echoData), cfg, WithPoller(b.Name), WithLoops(2), m.opt)
					ccfg := clientTLS(t)
					ccfg.MinVersion, ccfg.MaxVersion = vers, vers
					ccfg.NextProtos = []string{"echo/1"}
					c := dialTLS(t, addr, ccfg)
					for i := 0; i < 3; i++ {
						msg := []byte("hello, loop " + string(rune('a'+i)))
						if _, err := c.Write(msg); err != nil {
							t.Fatal(err)
						}
						got := make([]byte, len(msg))
						if _, err := io.ReadFull(c, got); err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, msg) {
							t.Fatalf("echo = %q, want %q", got, msg)
						}
					}
					_, _, states := o.snapshot()
					if len(states) != 1 || states[0] == nil {
						t.Fatalf("OnOpen saw %v, want one TLS state", states)
					}
					st := states[0]
					if st.Version != vers || !st.HandshakeComplete || st.ServerName != "example.test" ||
						st.NegotiatedProtocol != "echo/1" || st.CipherSuite != c.ConnectionState().CipherSuite {
						t.Fatalf("state: version %x complete %v SNI %q ALPN %q suite %x; client suite %x",
							st.Version, st.HandshakeComplete, st.ServerName, st.NegotiatedProtocol, st.CipherSuite,
							c.ConnectionState().CipherSuite)
					}
					testsupport.Eventually(t, 0, "handshake counted", func() bool { return s.Stats().TLSHandshakes == 1 })
				})
			}
		}
	}
}

// TestTLSPlainConnHasNoState: Conn.TLS is nil on a plain listener of the same server.
func TestTLSPlainConnHasNoState(t *testing.T) {
	var o openState
	s, err := NewServer(o.handler(echoData), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := s.Listen("tcp", "127.0.0.1:0", WithTLS(serverTLS(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pc := dial(t, "tcp", plain.String())
	pc.Write([]byte("x"))
	io.ReadFull(pc, make([]byte, 1))
	tc := dialTLS(t, secure.String(), clientTLS(t))
	tc.Write([]byte("y"))
	io.ReadFull(tc, make([]byte, 1))
	_, _, states := o.snapshot()
	if len(states) != 2 || states[0] != nil || states[1] == nil {
		t.Fatalf("states = %v, want [nil, TLS]", states)
	}
}

// TestTLSListenOptions: bad TLS options are refused by Listen with ErrInvalidArgument.
func TestTLSListenOptions(t *testing.T) {
	s, err := NewServer(HandlerFuncs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, opt := range map[string]ListenOption{
		"nil config":    WithTLS(nil),
		"no cert":       WithTLS(&tls.Config{}),
		"nil option":    nil,
		"reply too big": WithTLSPlaintextReply(make([]byte, 5000)),
	} {
		if _, err := s.Listen("tcp", "127.0.0.1:0", opt); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: Listen err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if len(s.Addrs()) != 0 {
		t.Fatalf("a refused Listen left a socket: %v", s.Addrs())
	}
	for _, opt := range []Option{WithTLSHandshakeTimeout(0), WithTLSHandshakeLimit(0), WithTLSHandshakeLimit(1 << 20)} {
		if _, err := NewServer(HandlerFuncs{}, opt); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewServer err = %v, want ErrInvalidOption", err)
		}
	}
}

// TestTLSBulkBothWays: megabytes each way through small watermarks and a 512-byte read buffer,
// so records never fit the plaintext space (crypto/tls keeps the rest: fTLSMore) and output
// backpressure stops reading; the echo must be exact.
func TestTLSBulkBothWays(t *testing.T) {
	for _, rb := range []int{512, DefaultReadBufferSize} {
		t.Run(fmt.Sprint("readbuf=", rb), func(t *testing.T) {
			h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
				n := 0
				for n < len(in) && !c.OutputFull() {
					k := min(len(in)-n, 1000)
					c.Write(in[n : n+k])
					n += k
				}
				return n
			}}
			_, addr := startTLSServer(t, h, serverTLS(t), WithLoops(1), WithReadBufferSize(rb), WithWatermarks(64<<10, 0))
			c := dialTLS(t, addr, clientTLS(t))
			msg := make([]byte, 4<<20)
			rand.Read(msg)
			errc := make(chan error, 1)
			go func() {
				_, err := c.Write(msg)
				errc <- err
			}()
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("echoed bytes differ")
			}
		})
	}
}

// holdConn passes its first write (the ClientHello) and buffers the rest until release, so a
// test can put a TLS 1.3 client's Finished and its first request in one TCP segment.
type holdConn struct {
	net.Conn
	writes int
	buf    []byte
}

func (h *holdConn) Write(p []byte) (int, error) {
	h.writes++
	if h.writes > 1 {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	return h.Conn.Write(p)
}

func (h *holdConn) release() error {
	_, err := h.Conn.Write(h.buf)
	h.buf = nil
	return err
}

// TestTLSDataBehindFinished: requests sent in the same segment as the client's Finished reach
// the worker with the handshake input (crypto/tls reads them into its buffer, or they stay in
// the handshake input); once the handshake is done they must be delivered without any
// readiness report. TLS 1.3 only: a TLS 1.2 client waits for the server's Finished first.
func TestTLSDataBehindFinished(t *testing.T) {
	for _, m := range hsModes {
		t.Run(m.name, func(t *testing.T) { testTLSDataBehindFinished(t, m.opt) })
	}
}

func testTLSDataBehindFinished(t *testing.T, mode Option) {
	_, addr := startTLSServer(t, HandlerFuncs{Data: echoData}, serverTLS(t), WithLoops(1), mode)
	raw := dial(t, "tcp", addr)
	hc := &holdConn{Conn: raw}
	ccfg := clientTLS(t)
	ccfg.MinVersion = tls.VersionTLS13
	tc := tls.Client(hc, ccfg)
	if err := tc.Handshake(); err != nil { // returns once Finished is "written" (held)
		t.Fatal(err)
	}
	msg := []byte("first request|second request")
	if _, err := tc.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := hc.release(); err != nil { // Finished and the requests in one write
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(tc, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %q", got)
	}
}

// TestTLSOnInheritedSockets: sockets the server did not open serve TLS with the same option
// (ListenOn, ListenFdWith); a bad option leaves the descriptor the caller's.
func TestTLSOnInheritedSockets(t *testing.T) {
	s, err := NewServer(HandlerFuncs{Data: echoData}, WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListenOn(ln, WithTLS(nil)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ListenOn with a nil config: %v", err)
	}
	a1, err := s.ListenOn(ln, WithTLS(serverTLS(t)))
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln2.(*net.TCPListener).File()
	ln2.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if _, err := s.ListenFdWith([]int{fd}, WithTLS(&tls.Config{})); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ListenFdWith with a config without certificate: %v", err)
	}
	if _, err := f.Stat(); err != nil {
		t.Fatalf("descriptor closed by a refused ListenFdWith: %v", err)
	}
	nfd, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s.ListenFdWith([]int{nfd}, WithTLS(serverTLS(t)))
	if err != nil {
		unix.Close(nfd)
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []net.Addr{a1, a2} {
		c := dialTLS(t, a.String(), clientTLS(t))
		c.Write([]byte("hi"))
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			t.Fatalf("%v: %v", a, err)
		}
	}
}
