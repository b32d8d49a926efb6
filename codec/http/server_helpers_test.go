package http

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// startServer runs a Server on 127.0.0.1:0 and shuts it down at the end of the test.
func startServer(t testing.TB, h Handler, opts ...Option) (*Server, string) {
	t.Helper()
	return startServerPrimed(t, h, nil, opts...)
}

// startServerPrimed is startServer with a step between Listen and Start: prime gets the
// address while the kernel already completes connections but no loop runs yet. A test whose
// first request must not race a server timeout dials and writes it there: the bytes are
// waiting when the connection is accepted, and a loop reads ready connections before it runs
// its timers, so however late the loop gets to it, the request is seen first.
func startServerPrimed(t testing.TB, h Handler, prime func(addr string), opts ...Option) (*Server, string) {
	t.Helper()
	s, err := NewServer(h, opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if prime != nil {
		prime(addr.String())
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

// client is one raw TCP connection with a reader for responses.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialClient(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetDeadline(testsupport.Deadline(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

func (cl *client) send(s string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, s); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

// read reads one response (for a request with method), body included.
func (cl *client) read(method string) (*nethttp.Response, string) {
	cl.t.Helper()
	resp, body, err := readResponse(cl.br, method)
	if err != nil {
		cl.t.Fatalf("read response: %v", err)
	}
	return resp, body
}

func readResponse(br *bufio.Reader, method string) (*nethttp.Response, string, error) {
	resp, err := nethttp.ReadResponse(br, &nethttp.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// closed reports whether the server closed the connection (EOF or reset) with nothing more
// to read.
func (cl *client) closed() bool {
	cl.c.SetReadDeadline(testsupport.Deadline(5 * time.Second))
	defer cl.c.SetReadDeadline(testsupport.Deadline(20 * time.Second))
	_, err := cl.br.ReadByte()
	return errors.Is(err, io.EOF) || err != nil && strings.Contains(err.Error(), "reset")
}

// hello answers every request with "hello" and echoes a few request facts in headers.
var hello = HandlerFunc(func(w *ResponseWriter, r *Request) {
	w.Set("Content-Type", "text/plain")
	w.SetBytes("X-Path", r.Path())
	w.WriteString("hello")
})

// echo answers with the request body and its trailers.
var echo = HandlerFunc(func(w *ResponseWriter, r *Request) {
	for i := 0; i < r.NumTrailers(); i++ {
		n, v := r.TrailerAt(i)
		w.AddBytes("X-Trailer-"+string(n), v)
	}
	w.Write(r.Body())
})

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

var errCanceled = context.Canceled

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 512) }
