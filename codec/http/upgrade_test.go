package http

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// upper is a line protocol a connection is upgraded to: it greets, answers every complete line
// in upper case, and keeps a partial line for the next OnData (the consumed-count contract).
type upper struct {
	opened   atomic.Bool
	closed   chan error
	badCount bool // return an invalid consumed count
}

func newUpper() *upper { return &upper{closed: make(chan error, 1)} }

func (u *upper) OnOpen(c *reactor.Conn) {
	u.opened.Store(true)
	c.Write([]byte("hello\n"))
}

func (u *upper) OnData(c *reactor.Conn, in []byte) int {
	if u.badCount {
		return len(in) + 1
	}
	i := bytes.LastIndexByte(in, '\n')
	if i < 0 {
		return 0
	}
	c.Write(bytes.ToUpper(in[:i+1]))
	if bytes.Contains(in[:i], []byte("QUIT")) || bytes.Contains(in[:i], []byte("quit")) {
		c.Close()
	}
	return i + 1
}

func (u *upper) OnClose(c *reactor.Conn, err error) { u.closed <- err }

func (u *upper) waitClosed(t *testing.T) error {
	t.Helper()
	select {
	case err := <-u.closed:
		return err
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("the upgraded handler's OnClose was not called")
		return nil
	}
}

// upgradeHandler upgrades "/up" to h and answers everything else with "plain".
func upgradeHandler(h reactor.Handler, errs chan<- error) Handler {
	return HandlerFunc(func(w *ResponseWriter, r *Request) {
		if string(r.Path()) != "/up" {
			w.WriteString("plain")
			return
		}
		w.Set("Upgrade", "upper")
		if err := w.Upgrade(h); err != nil {
			if errs != nil {
				errs <- err
			}
			w.SetStatus(StatusBadRequest)
			w.WriteString(err.Error())
		}
	})
}

const upgradeReq = "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: upper\r\n\r\n"

// readUntil reads from cl until the input so far ends with suffix.
func readUntil(t *testing.T, cl *client, suffix string) string {
	t.Helper()
	var got []byte
	for !bytes.HasSuffix(got, []byte(suffix)) {
		b, err := cl.br.ReadByte()
		if err != nil {
			t.Fatalf("reading until %q: %v (got %q)", suffix, err, got)
		}
		got = append(got, b)
	}
	return string(got)
}

func TestUpgradeHandsConnectionOver(t *testing.T) {
	u := newUpper()
	_, addr := startServer(t, upgradeHandler(u, nil), WithServerName("t"), WithReactorOptions(reactor.WithLoops(1)))
	cl := dialClient(t, addr)
	// A pipelined plain request first, then the upgrade, then bytes of the new protocol in
	// the same write: one whole line and the start of the next.
	cl.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + upgradeReq + "abc\nde")
	resp, body := cl.read("GET")
	if resp.StatusCode != 200 || body != "plain" {
		t.Fatalf("pipelined response before the upgrade: %d %q", resp.StatusCode, body)
	}
	head := readUntil(t, cl, "\r\n\r\n")
	for _, want := range []string{"HTTP/1.1 101 Switching Protocols\r\n", "\r\nUpgrade: upper\r\n", "\r\nConnection: Upgrade\r\n", "\r\nServer: t\r\n", "\r\nDate: "} {
		if !strings.Contains(head, want) {
			t.Fatalf("101 head %q lacks %q", head, want)
		}
	}
	if strings.Contains(head, "Content-Length") || strings.Contains(head, "Transfer-Encoding") {
		t.Fatalf("101 head %q carries body framing", head)
	}
	if got := readUntil(t, cl, "ABC\n"); got != "hello\nABC\n" {
		t.Fatalf("after the 101: %q, want the greeting and ABC", got)
	}
	// "de" was kept by the new handler; its end arrives now.
	cl.send("f\n")
	if got := readUntil(t, cl, "\n"); got != "DEF\n" {
		t.Fatalf("got %q, want DEF (the kept partial line completed)", got)
	}
	// Nothing of HTTP is parsed any more: a request line is just a line.
	cl.send("GET / HTTP/1.1\n")
	if got := readUntil(t, cl, "\n"); got != "GET / HTTP/1.1\n" {
		t.Fatalf("got %q", got)
	}
	cl.c.Close()
	if err := u.waitClosed(t); !errors.Is(err, io.EOF) {
		t.Fatalf("OnClose(%v), want io.EOF", err)
	}
}

func TestUpgradeOnlyHeaderThenData(t *testing.T) {
	// The upgrade request alone; the new protocol's bytes come in later reads, and the
	// handler closes the connection itself.
	u := newUpper()
	_, addr := startServer(t, upgradeHandler(u, nil))
	cl := dialClient(t, addr)
	cl.send(upgradeReq)
	readUntil(t, cl, "\r\n\r\nhello\n")
	cl.send("quit\n")
	if got := readUntil(t, cl, "\n"); got != "QUIT\n" {
		t.Fatalf("got %q", got)
	}
	if !cl.closed() {
		t.Fatal("connection still open after the handler closed it")
	}
	if err := u.waitClosed(t); err != nil {
		t.Fatalf("OnClose(%v), want nil after a local Close", err)
	}
}

func TestUpgradeRefused(t *testing.T) {
	tests := []struct {
		name, req string
		h         func(u reactor.Handler) Handler
		want      error
	}{
		{"http10", "GET /up HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", nil, ErrUpgradeUnavailable},
		{"head", "HEAD /up HTTP/1.1\r\nHost: x\r\n\r\n", nil, ErrUpgradeUnavailable},
		{"connection-close", "GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", nil, ErrUpgradeUnavailable},
		{"no-upgrade-header", "GET /up HTTP/1.1\r\nHost: x\r\n\r\n", func(u reactor.Handler) Handler {
			return HandlerFunc(func(w *ResponseWriter, r *Request) {
				err := w.Upgrade(u)
				w.SetStatus(StatusBadRequest)
				w.WriteString(err.Error())
			})
		}, ErrUpgradeUnavailable},
		{"body-written", "GET /up HTTP/1.1\r\nHost: x\r\n\r\n", func(u reactor.Handler) Handler {
			return HandlerFunc(func(w *ResponseWriter, r *Request) {
				w.WriteString("x")
				w.Set("Upgrade", "upper")
				err := w.Upgrade(u)
				w.SetStatus(StatusBadRequest)
				w.WriteString(err.Error())
			})
		}, ErrUpgradeUnavailable},
		{"nil-handler", "GET /up HTTP/1.1\r\nHost: x\r\n\r\n", func(reactor.Handler) Handler {
			return HandlerFunc(func(w *ResponseWriter, r *Request) {
				w.Set("Upgrade", "upper")
				err := w.Upgrade(nil)
				w.SetStatus(StatusBadRequest)
				w.WriteString(err.Error())
			})
		}, ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpper()
			var h Handler
			if tc.h != nil {
				h = tc.h(u)
			} else {
				h = upgradeHandler(u, nil)
			}
			_, addr := startServer(t, h)
			cl := dialClient(t, addr)
			cl.send(tc.req)
			method := "GET"
			if strings.HasPrefix(tc.req, "HEAD") {
				method = "HEAD"
			}
			resp, body := cl.read(method)
			if resp.StatusCode != StatusBadRequest {
				t.Fatalf("status %d, want 400 from the handler after the refused upgrade", resp.StatusCode)
			}
			if method == "GET" && !strings.Contains(body, tc.want.Error()) {
				t.Fatalf("body %q, want the error %q", body, tc.want)
			}
			if u.opened.Load() {
				t.Fatal("the refused handler was opened")
			}
		})
	}
	t.Run("writer-without-server", func(t *testing.T) {
		var w ResponseWriter
		w.Begin(nil, nil)
		w.Set("Upgrade", "upper")
		if err := w.Upgrade(newUpper()); !errors.Is(err, ErrUpgradeUnavailable) {
			t.Fatalf("Upgrade on a bare writer: %v", err)
		}
		if err := w.Upgrade(newUpper()); !errors.Is(err, ErrUpgradeUnavailable) {
			t.Fatalf("second call: %v", err)
		}
	})
}

func TestUpgradeThenWriteFails(t *testing.T) {
	u := newUpper()
	errs := make(chan error, 2)
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.Set("Upgrade", "upper")
		errs <- w.Upgrade(u)
		_, err := w.WriteString("late")
		errs <- err
	}))
	cl := dialClient(t, addr)
	cl.send(upgradeReq)
	if got := readUntil(t, cl, "\r\n\r\nhello\n"); strings.Contains(got, "late") {
		t.Fatalf("bytes written after Upgrade were sent: %q", got)
	}
	if err := <-errs; err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	if err := <-errs; !errors.Is(err, ErrFinished) {
		t.Fatalf("Write after Upgrade: %v, want ErrFinished", err)
	}
}

func TestUpgradeHandlerPanicAfterUpgrade(t *testing.T) {
	u := newUpper()
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.Set("Upgrade", "upper")
		w.Upgrade(u)
		panic("after upgrade")
	}))
	cl := dialClient(t, addr)
	cl.send(upgradeReq)
	resp, _ := cl.read("GET")
	if resp.StatusCode != StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if !cl.closed() {
		t.Fatal("connection open after the panic")
	}
	if u.opened.Load() {
		t.Fatal("handler opened although the upgrade response was replaced by a 500")
	}
}

func TestUpgradeBadConsumedCloses(t *testing.T) {
	u := newUpper()
	u.badCount = true
	_, addr := startServer(t, upgradeHandler(u, nil))
	cl := dialClient(t, addr)
	cl.send(upgradeReq + "x")
	// The reactor closes at once (pending output, the 101 included, is dropped).
	if err := u.waitClosed(t); !errors.Is(err, reactor.ErrBadConsumed) {
		t.Fatalf("OnClose(%v), want ErrBadConsumed", err)
	}
}

// flowHandler writes more than the high-water mark on open, and says when OnWritable and
// OnReadEOF reach it.
type flowHandler struct {
	*upper
	big      int
	writable chan struct{}
	readEOF  chan struct{}
}

func (f *flowHandler) OnOpen(c *reactor.Conn) {
	f.upper.OnOpen(c)
	c.Write(bytes.Repeat([]byte("z"), f.big))
}

func (f *flowHandler) OnWritable(c *reactor.Conn) {
	select {
	case f.writable <- struct{}{}:
	default:
	}
}

func (f *flowHandler) OnReadEOF(c *reactor.Conn) bool {
	close(f.readEOF)
	c.Write([]byte("bye\n"))
	c.Close()
	return true
}

func TestUpgradeDelegatesWritableAndReadEOF(t *testing.T) {
	f := &flowHandler{upper: newUpper(), big: 256 << 10, writable: make(chan struct{}, 1), readEOF: make(chan struct{})}
	_, addr := startServer(t, upgradeHandler(f, nil), WithReactorOptions(reactor.WithWatermarks(64<<10, 0)))
	cl := dialClient(t, addr)
	cl.send(upgradeReq)
	readUntil(t, cl, "\r\n\r\nhello\n")
	if _, err := io.ReadFull(cl.br, make([]byte, f.big)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.writable:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnWritable was not delegated after the output drained")
	}
	cl.c.(interface{ CloseWrite() error }).CloseWrite()
	if got := readUntil(t, cl, "\n"); got != "bye\n" {
		t.Fatalf("after the half-close: %q, want the handler's goodbye", got)
	}
	<-f.readEOF
	if !cl.closed() {
		t.Fatal("connection open after the handler's Close")
	}
	if err := f.waitClosed(t); err != nil {
		t.Fatalf("OnClose(%v)", err)
	}
}
