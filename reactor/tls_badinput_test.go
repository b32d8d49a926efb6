package reactor

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// captureHello returns the bytes of a real ClientHello from crypto/tls's client, as far as the
// end of the record that completes it.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	cli, srv := net.Pipe()
	defer srv.Close()
	go func() {
		tls.Client(cli, cfg).Handshake()
		cli.Close()
	}()
	var got []byte
	buf := make([]byte, 4096)
	for {
		srv.SetReadDeadline(testsupport.Deadline(5 * time.Second))
		n, err := srv.Read(buf)
		got = append(got, buf[:n]...)
		if ok, _, herr := clientHelloComplete(got); ok {
			return got
		} else if herr != nil || err != nil {
			t.Fatalf("capturing a ClientHello: %v %v", herr, err)
		}
	}
}

// readUntilClosed reads c until EOF or an error and reports how long that took; a connection
// reset counts as closed.
func readUntilClosed(t *testing.T, c net.Conn, within time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
	return got
}

// badInputServer is a TLS server whose handler must never be called: every case here fails
// before or during the handshake.
func badInputServer(t *testing.T, opts ...Option) (*Server, string, *openState) {
	t.Helper()
	var o openState
	s, err := NewServer(o.handler(echoData), opts...)
	if err != nil {
		t.Fatal(err)
	}
	reply := []byte("HTTP/1.0 400 Bad Request\r\n\r\nplaintext on a TLS port\n")
	addr, err := s.Listen("tcp", "127.0.0.1:0", WithTLS(serverTLS(t)), WithTLSPlaintextReply(reply))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String(), &o
}

// TestTLSBadInputRefusedAtOnce: what cannot begin a ClientHello is refused on its first bytes,
// without a worker, and counted as an error; plaintext gets the listener's reply.
func TestTLSBadInputRefusedAtOnce(t *testing.T) {
	cases := []struct {
		name  string
		in    []byte
		reply bool
	}{
		{"plaintext HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true},
		{"garbage", []byte{0x00, 0xff, 0x13, 0x37, 0x42}, false},
		{"SSLv2 hello", []byte{0x80, 0x2e, 0x01, 0x00, 0x02}, false},
		{"alert record first", []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}, false},
		{"bad major version", []byte{0x16, 0x09, 0x01}, false},
		{"empty record", []byte{0x16, 0x03, 0x01, 0x00, 0x00}, false},
		{"oversized record", []byte{0x16, 0x03, 0x01, 0xff, 0xff}, false},
		{"not a ClientHello", []byte{0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00}, false},
		{"huge ClientHello", []byte{0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00}, false},
	}
	// A long timeout: each case must be refused long before it.
	s, addr, o := badInputServer(t, WithLoops(1), WithTLSHandshakeTimeout(time.Hour))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, "tcp", addr)
			if _, err := c.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			got := readUntilClosed(t, c, testsupport.Scale(5*time.Second))
			if tc.reply != bytes.HasPrefix(got, []byte("HTTP/1.0 400")) {
				t.Fatalf("reply %q, want reply=%v", got, tc.reply)
			}
			testsupport.Eventually(t, 0, "error counted", func() bool {
				return s.Stats().TLSHandshakeErrors == uint64(i+1)
			})
		})
	}
	st := s.Stats()
	if st.TLSHandshakeWorkers != 0 || st.TLSHandshakes != 0 || st.TLSHandshakeTimeouts != 0 {
		t.Fatalf("stats %+v: a worker ran or a handshake completed", st)
	}
	if opened, closed, _ := o.snapshot(); opened != 0 || len(closed) != 0 {
		t.Fatalf("handler saw %d opens, %d closes", opened, len(closed))
	}
}

// TestTLSRefusedByCryptoTLS: a complete ClientHello that crypto/tls refuses (no common
// version) ends with its alert and a close, counted as an error.
func TestTLSRefusedByCryptoTLS(t *testing.T) {
	for _, m := range hsModes {
		t.Run(m.name, func(t *testing.T) { testTLSRefusedByCryptoTLS(t, m.opt) })
	}
}

func testTLSRefusedByCryptoTLS(t *testing.T, mode Option) {
	var o openState
	cfg := serverTLS(t)
	cfg.MinVersion = tls.VersionTLS13
	s, addr := startTLSServer(t, o.handler(echoData), cfg, WithLoops(1), mode)
	ccfg := clientTLS(t)
	ccfg.MaxVersion = tls.VersionTLS12
	_, err := tls.Dial("tcp", addr, ccfg)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("protocol version")) {
		t.Fatalf("dial err = %v, want the server's protocol_version alert", err)
	}
	testsupport.Eventually(t, 0, "error counted", func() bool { return s.Stats().TLSHandshakeErrors == 1 })
	if opened, _, _ := o.snapshot(); opened != 0 {
		t.Fatal("OnOpen called for a failed handshake")
	}
}

// TestTLSHandshakeTimeouts: a client that sends nothing, half a ClientHello, or a whole one and
// then stalls, is closed when the handshake timeout runs out, counted as a timeout, never seen
// by the handler.
func TestTLSHandshakeTimeouts(t *testing.T) {
	for _, m := range hsModes {
		t.Run(m.name, func(t *testing.T) { testTLSHandshakeTimeouts(t, m.opt) })
	}
}

func testTLSHandshakeTimeouts(t *testing.T, mode Option) {
	hello := captureHello(t, clientTLS(t))
	timeout := testsupport.Scale(300 * time.Millisecond)
	cases := []struct {
		name string
		send []byte
	}{
		{"nothing", nil},
		{"truncated ClientHello", hello[:len(hello)/2]},
		{"stalled after ClientHello", hello},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, addr, o := badInputServer(t, WithLoops(1), WithTLSHandshakeTimeout(timeout), mode)
			c := dial(t, "tcp", addr)
			start := time.Now()
			c.Write(tc.send)
			got := readUntilClosed(t, c, timeout+testsupport.Scale(5*time.Second))
			if el := time.Since(start); el < timeout*9/10 {
				t.Fatalf("closed after %v, before the %v timeout", el, timeout)
			}
			if tc.send != nil && len(tc.send) == len(hello) && len(got) == 0 {
				t.Fatal("the server's flight did not arrive for a complete ClientHello")
			}
			testsupport.Eventually(t, 0, "timeout counted", func() bool { return s.Stats().TLSHandshakeTimeouts == 1 })
			if opened, closed, _ := o.snapshot(); opened != 0 || len(closed) != 0 {
				t.Fatalf("handler saw %d opens, %d closes", opened, len(closed))
			}
		})
	}
}

// TestTLSSilentClients: a thousand clients that connect and send nothing cost no goroutine and
// are all closed by the handshake timeout; the server then still serves.
func TestTLSSilentClients(t *testing.T) {
	const n = 1000
	timeout := testsupport.Scale(time.Second)
	s, addr, _ := badInputServer(t, WithLoops(2), WithTLSHandshakeTimeout(timeout), WithTLSHandshakeLimit(4))
	base := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Some may time out before the last is dialed (a loaded machine): count accepts.
	testsupport.Eventually(t, 0, "all accepted", func() bool { return s.Stats().ConnsAccepted == n })
	if g := runtime.NumGoroutine(); g > base+4 {
		t.Fatalf("%d goroutines with %d silent clients, %d before", g, n, base)
	}
	if w := s.Stats().TLSHandshakeWorkers; w != 0 {
		t.Fatalf("%d handshake workers for clients that sent nothing", w)
	}
	testsupport.Eventually(t, timeout+testsupport.Scale(10*time.Second), "all timed out", func() bool {
		return s.Stats().ConnsOpen == 0
	})
	// Loop counters are published at the end of each iteration: wait for the last one.
	testsupport.Eventually(t, 0, "timeouts counted", func() bool { return s.Stats().TLSHandshakeTimeouts == n })
	for _, c := range conns {
		c.SetReadDeadline(testsupport.Deadline(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a silent client got data")
		}
	}
	tc := dialTLS(t, addr, clientTLS(t))
	tc.Write([]byte("ok"))
	if _, err := io.ReadFull(tc, make([]byte, 2)); err != nil {
		t.Fatalf("served after the flood: %v", err)
	}
}

// TestTLSStalledHandshakesBoundWorkers: clients that stall midway hold workers, never more
// than the bound; the others queue without a goroutine; all are closed at the timeout, and a
// client that handshakes normally is served once workers are free.
func TestTLSStalledHandshakesBoundWorkers(t *testing.T) {
	for _, m := range hsModes {
		t.Run(m.name, func(t *testing.T) { testTLSStalledHandshakesBoundWorkers(t, m.opt) })
	}
}

func testTLSStalledHandshakesBoundWorkers(t *testing.T, mode Option) {
	const bound, stalled = 2, 6
	hello := captureHello(t, clientTLS(t))
	timeout := testsupport.Scale(time.Second)
	s, addr, _ := badInputServer(t, WithLoops(1), WithTLSHandshakeTimeout(timeout), WithTLSHandshakeLimit(bound), mode)
	base := runtime.NumGoroutine()
	for i := 0; i < stalled; i++ {
		c := dial(t, "tcp", addr)
		c.Write(hello)
	}
	testsupport.Eventually(t, 0, "workers busy, the rest queued", func() bool {
		st := s.Stats()
		return st.TLSHandshakesActive == bound && st.TLSHandshakesQueued == stalled-bound
	})
	if st := s.Stats(); st.TLSHandshakeWorkers > bound {
		t.Fatalf("%d workers, bound %d", st.TLSHandshakeWorkers, bound)
	}
	if g := runtime.NumGoroutine(); g > base+bound+1 {
		t.Fatalf("%d goroutines, %d before, bound %d", g, base, bound)
	}
	testsupport.Eventually(t, timeout+testsupport.Scale(10*time.Second), "stalled clients closed", func() bool {
		st := s.Stats()
		return st.ConnsOpen == 0 && st.TLSHandshakesActive == 0 && st.TLSHandshakesQueued == 0
	})
	testsupport.Eventually(t, 0, "timeouts counted", func() bool { return s.Stats().TLSHandshakeTimeouts == stalled })
	tc := dialTLS(t, addr, clientTLS(t))
	tc.Write([]byte("ok"))
	if _, err := io.ReadFull(tc, make([]byte, 2)); err != nil {
		t.Fatalf("served after the stalls: %v", err)
	}
}

// TestTLSCloseWithoutCloseNotify: a peer that closes its socket without close_notify at a
// record boundary is a clean end (io.EOF); one that cuts a record short is an error; both close.
func TestTLSCloseWithoutCloseNotify(t *testing.T) {
	for _, cut := range []bool{false, true} {
		name := "at record boundary"
		if cut {
			name = "inside a record"
		}
		t.Run(name, func(t *testing.T) {
			var o openState
			_, addr := startTLSServer(t, o.handler(echoData), serverTLS(t), WithLoops(1))
			raw := dial(t, "tcp", addr)
			cc := &cuttingConn{Conn: raw}
			tc := tls.Client(cc, clientTLS(t))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			tc.Write([]byte("ping"))
			io.ReadFull(tc, make([]byte, 4))
			if cut {
				cc.cut = true // half of the next record, then the FIN
				tc.Write([]byte("a record that will be cut short"))
			} else {
				raw.Close()
			}
			testsupport.Eventually(t, 0, "closed", func() bool {
				_, closed, _ := o.snapshot()
				return len(closed) == 1
			})
			_, closed, _ := o.snapshot()
			if cut == (closed[0] == io.EOF) {
				t.Fatalf("OnClose err = %v (cut %v)", closed[0], cut)
			}
		})
	}
}

// cuttingConn, once cut is set, writes only the first half of the next write and closes.
type cuttingConn struct {
	net.Conn
	cut bool
}

func (c *cuttingConn) Write(p []byte) (int, error) {
	if c.cut {
		c.Conn.Write(p[:len(p)/2])
		c.Conn.Close()
		return len(p), nil
	}
	return c.Conn.Write(p)
}
