package websocket

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoHandler echoes every message with its type.
var echoHandler = HandlerFuncs{Message: func(c *Conn, typ MessageType, data []byte) {
	c.Send(typ, data)
}}

// testServer is an HTTP server on 127.0.0.1:0 whose native handler upgrades every request.
type testServer struct {
	u    *Upgrader
	srv  *rhttp.Server
	addr string
}

// startWS runs u's connections on a one-loop server (unless loops is given in ropts) and
// closes it at the end of the test.
func startWS(t testing.TB, h Handler, opts []Option, ropts ...reactor.Option) *testServer {
	t.Helper()
	u, err := NewUpgrader(h, opts...)
	if err != nil {
		t.Fatalf("NewUpgrader: %v", err)
	}
	ropts = append([]reactor.Option{reactor.WithLoops(1)}, ropts...)
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		if string(r.Path()) == "/plain" {
			w.WriteString("plain")
			return
		}
		u.Upgrade(w, r)
	}), rhttp.WithReactorOptions(ropts...))
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return &testServer{u: u, srv: srv, addr: addr.String()}
}

// waitOpen waits until the Upgrader has n open connections.
func (ts *testServer) waitOpen(t testing.TB, n int64) {
	t.Helper()
	testsupport.Eventually(t, 0, fmt.Sprintf("%d open connections", n), func() bool { return ts.u.Stats().Open == n })
}

// recorder is a Handler that records what happens, for tests to wait on.
type recorder struct {
	echo   bool
	mu     sync.Mutex
	msgs   []recMsg
	closed chan error
	opened chan *Conn
}

type recMsg struct {
	typ  MessageType
	data string
}

func newRecorder(echo bool) *recorder {
	return &recorder{echo: echo, closed: make(chan error, 16), opened: make(chan *Conn, 16)}
}

// OnOpen and OnClose never block the loop: a test that does not wait for the events just
// loses them once the buffer is full.
func (r *recorder) OnOpen(c *Conn) {
	select {
	case r.opened <- c:
	default:
	}
}

func (r *recorder) OnMessage(c *Conn, typ MessageType, data []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, recMsg{typ, string(data)})
	r.mu.Unlock()
	if r.echo {
		c.Send(typ, data)
	}
}

func (r *recorder) OnClose(c *Conn, err error) {
	select {
	case r.closed <- err:
	default:
	}
}

func (r *recorder) waitClosed(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.closed:
		return err
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnClose was not called")
		return nil
	}
}

func (r *recorder) waitOpened(t testing.TB) *Conn {
	t.Helper()
	select {
	case c := <-r.opened:
		return c
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnOpen was not called")
		return nil
	}
}

func (r *recorder) messages() []recMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recMsg(nil), r.msgs...)
}

// rawClient speaks WebSocket frame by frame, so tests can send what no real client would.
type rawClient struct {
	t   testing.TB
	c   net.Conn
	br  *bufio.Reader
	key uint32 // mask key, in wire order (little-endian load)
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// handshakeRequest returns an opening handshake with extra header lines (each ending in CRLF).
func handshakeRequest(extra string) string {
	return "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// dialRaw connects and completes the handshake (with extra header lines), returning the
// client and the 101 response.
func dialRaw(t testing.TB, addr, extra string) (*rawClient, *nethttp.Response) {
	t.Helper()
	rc := dialTCP(t, addr)
	rc.write([]byte(handshakeRequest(extra)))
	resp, err := nethttp.ReadResponse(rc.br, &nethttp.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("reading the handshake response: %v", err)
	}
	if resp.StatusCode != 101 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("handshake: status %d %q, want 101", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	return rc, resp
}

func dialTCP(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetDeadline(time.Now().Add(testsupport.Scale(20 * time.Second)))
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10), key: 0x3d21fa37}
}

func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// frame encodes a masked client frame (unmasked when masked is false).
func (rc *rawClient) frame(fin bool, rsv, op byte, payload []byte, masked bool) []byte {
	first := rsv | op
	if fin {
		first |= bitFin
	}
	b := []byte{first}
	mbit := byte(0)
	if masked {
		mbit = bitMask
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, mbit|byte(n))
	case n <= 0xFFFF:
		b = append(b, mbit|126, byte(n>>8), byte(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	start := len(b)
	if masked {
		b = binary.LittleEndian.AppendUint32(b, rc.key)
		start += 4
	}
	b = append(b, payload...)
	if masked {
		mask(rc.key, 0, b[start:])
	}
	return b
}

// send writes one masked frame.
func (rc *rawClient) send(fin bool, op byte, payload []byte) {
	rc.t.Helper()
	rc.write(rc.frame(fin, 0, op, payload, true))
}

type rawFrame struct {
	fin     bool
	rsv, op byte
	payload []byte
}

// read reads one server frame, which must be unmasked.
func (rc *rawClient) read() (rawFrame, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(rc.br, hdr[:]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{fin: hdr[0]&bitFin != 0, rsv: hdr[0] & 0x70, op: hdr[0] & 0x0F}
	if hdr[1]&bitMask != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(rc.br, ext[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(rc.br, ext[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<26 {
		return f, fmt.Errorf("server frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	_, err := io.ReadFull(rc.br, f.payload)
	return f, err
}

func (rc *rawClient) mustRead() rawFrame {
	rc.t.Helper()
	f, err := rc.read()
	if err != nil {
		rc.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// expectMessage reads one frame and requires an unfragmented message of type op with payload.
func (rc *rawClient) expectMessage(op byte, payload []byte) {
	rc.t.Helper()
	f := rc.mustRead()
	if !f.fin || f.op != op || string(f.payload) != string(payload) {
		rc.t.Fatalf("got frame fin=%v op=%d %d bytes %.40q, want fin op=%d %d bytes %.40q",
			f.fin, f.op, len(f.payload), f.payload, op, len(payload), payload)
	}
}

// expectClose reads frames until a close frame and requires its code (0: no code), then
// answers it and requires the server to close the TCP connection.
func (rc *rawClient) expectClose(code StatusCode) {
	rc.t.Helper()
	for {
		f := rc.mustRead()
		if f.op != opClose {
			continue
		}
		var got StatusCode
		if len(f.payload) >= 2 {
			got = StatusCode(binary.BigEndian.Uint16(f.payload))
		}
		if got != code {
			rc.t.Fatalf("close code %v (reason %q), want %v", got, f.payload[min(2, len(f.payload)):], code)
		}
		break
	}
	rc.c.Write(rc.frame(true, 0, opClose, closePayload(code, ""), true))
	rc.expectEOF()
}

// expectEOF requires the server to close the TCP connection with nothing more to read.
func (rc *rawClient) expectEOF() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(testsupport.Scale(10 * time.Second)))
	var b [1]byte
	n, err := rc.br.Read(b[:])
	if n != 0 || err == nil {
		rc.t.Fatalf("read %d bytes (%v) where the server should have closed", n, err)
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		rc.t.Fatalf("want EOF, got %v", err)
	}
}

func closePayload(code StatusCode, reason string) []byte {
	if code == 0 {
		return nil
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64<<10) }
