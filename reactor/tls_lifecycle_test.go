package reactor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// rawRecorder keeps every byte read from the socket under a TLS client, to inspect records.
type rawRecorder struct {
	net.Conn
	mu  sync.Mutex
	got []byte
}

func (r *rawRecorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.got = append(r.got, p[:n]...)
	r.mu.Unlock()
	return n, err
}

// lastRecordType walks the TLS records in b and returns the type of the last complete one.
func lastRecordType(b []byte) byte {
	var typ byte
	for len(b) >= 5 {
		n := int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			break
		}
		typ = b[0]
		b = b[5+n:]
	}
	return typ
}

// TestTLSHalfClose: the client's close_notify is the peer's EOF, as on TCP: the answer to the
// request before it is still written, then the server closes with its own close_notify and
// OnClose gets io.EOF. TLS 1.2, where an alert record is visible on the wire as type 21.
func TestTLSHalfClose(t *testing.T) {
	var o openState
	reply := bytes.Repeat([]byte("r"), 1<<20)
	h := o.handler(func(c *Conn, in []byte) int {
		c.Write(reply) // larger than the socket buffers: still pending at the EOF
		return len(in)
	})
	_, addr := startTLSServer(t, h, serverTLS(t), WithLoops(1), WithWatermarks(4<<20, 0))
	raw := dial(t, "tcp", addr)
	rec := &rawRecorder{Conn: raw}
	ccfg := clientTLS(t)
	ccfg.MaxVersion = tls.VersionTLS12
	tc := tls.Client(rec, ccfg)
	if _, err := tc.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := tc.CloseWrite(); err != nil { // close_notify
		t.Fatal(err)
	}
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(got) != len(reply) {
		t.Fatalf("got %d bytes, want %d", len(got), len(reply))
	}
	if typ := lastRecordType(rec.got); typ != 21 {
		t.Fatalf("last record type %d, want 21 (alert: close_notify)", typ)
	}
	testsupport.Eventually(t, 0, "OnClose", func() bool {
		_, closed, _ := o.snapshot()
		return len(closed) == 1
	})
	if _, closed, _ := o.snapshot(); closed[0] != io.EOF {
		t.Fatalf("OnClose err = %v, want io.EOF", closed[0])
	}
}

// TestTLSIdleTimeoutAfterHandshake: the server's idle timeout runs from the handshake's end, and
// the connection it closes ends with close_notify.
func TestTLSIdleTimeoutAfterHandshake(t *testing.T) {
	var o openState
	idle := testsupport.Scale(200 * time.Millisecond)
	_, addr := startTLSServer(t, o.handler(echoData), serverTLS(t), WithLoops(1), WithIdleTimeout(idle))
	raw := dial(t, "tcp", addr)
	rec := &rawRecorder{Conn: raw}
	ccfg := clientTLS(t)
	ccfg.MaxVersion = tls.VersionTLS12
	tc := tls.Client(rec, ccfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := io.ReadAll(tc); err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if el := time.Since(start); el < idle*8/10 {
		t.Fatalf("closed after %v, idle timeout %v", el, idle)
	}
	if typ := lastRecordType(rec.got); typ != 21 {
		t.Fatalf("last record type %d, want 21 (close_notify)", typ)
	}
	testsupport.Eventually(t, 0, "OnClose", func() bool {
		_, closed, _ := o.snapshot()
		return len(closed) == 1
	})
	if _, closed, _ := o.snapshot(); !errors.Is(closed[0], ErrIdleTimeout) {
		t.Fatalf("OnClose err = %v", closed[0])
	}
}

// TestTLSSendFile: a file range between written bytes arrives in order and intact over TLS,
// through small watermarks (file bytes count in the backlog as on TCP).
func TestTLSSendFile(t *testing.T) {
	content := make([]byte, 5<<20+123)
	rand.Read(content)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	const off = 1000
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			c.CloseNow()
			return len(in)
		}
		defer f.Close()
		c.Write([]byte("head|"))
		if err := c.SendFile(f, off, int64(len(content)-off)); err != nil {
			t.Error(err)
		}
		c.Write([]byte("|tail"))
		return len(in)
	}}
	_, addr := startTLSServer(t, h, serverTLS(t), WithLoops(1), WithWatermarks(256<<10, 0))
	tc := dialTLS(t, addr, clientTLS(t))
	tc.Write([]byte("go"))
	want := append(append([]byte("head|"), content[off:]...), "|tail"...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(tc, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file bytes differ")
	}
}

// TestTLSSendFileShortFile: a file shorter than the range closes the connection with
// io.ErrUnexpectedEOF, as on TCP.
func TestTLSSendFileShortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("short"), 0o600)
	h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int {
		f, _ := os.Open(path)
		defer f.Close()
		c.SendFile(f, 0, 100)
		return len(in)
	}})
	_, addr := startTLSServer(t, h, serverTLS(t), WithLoops(1))
	tc := dialTLS(t, addr, clientTLS(t))
	tc.Write([]byte("go"))
	if err := waitClose(t, closed); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("OnClose err = %v", err)
	}
}

// TestTLSPeerCertificates: with client authentication, OnOpen sees the client's chain.
func TestTLSPeerCertificates(t *testing.T) {
	for _, m := range hsModes {
		t.Run(m.name, func(t *testing.T) { testTLSPeerCertificates(t, m.opt) })
	}
}

func testTLSPeerCertificates(t *testing.T, mode Option) {
	var o openState
	p := testCerts(t)
	cfg := serverTLS(t)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = p.pool
	_, addr := startTLSServer(t, o.handler(echoData), cfg, WithLoops(1), mode)
	ccfg := clientTLS(t)
	ccfg.Certificates = []tls.Certificate{p.client}
	tc := dialTLS(t, addr, ccfg)
	tc.Write([]byte("x"))
	io.ReadFull(tc, make([]byte, 1))
	_, _, states := o.snapshot()
	if len(states) != 1 || len(states[0].PeerCertificates) == 0 ||
		states[0].PeerCertificates[0].Subject.CommonName != "client.test" || len(states[0].VerifiedChains) == 0 {
		t.Fatalf("peer certificates not seen: %+v", states)
	}
	// Without a certificate the handshake fails on the server.
	if c, err := tls.Dial("tcp", addr, clientTLS(t)); err == nil {
		// TLS 1.3: the client learns of the refusal on its first read.
		c.SetDeadline(testsupport.Deadline(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client without a certificate was served")
		}
		c.Close()
	}
}

// TestTLSShutdown: Shutdown closes a connection still in its handshake and an idle one at once,
// and waits for a held one until its answer is written.
func TestTLSShutdown(t *testing.T) {
	for _, m := range hsModes {
		t.Run(m.name, func(t *testing.T) { testTLSShutdown(t, m.opt) })
	}
}

func testTLSShutdown(t *testing.T, mode Option) {
	var held *Conn
	var mu sync.Mutex
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		if string(in) == "hold" {
			c.Hold()
			mu.Lock()
			held = c
			mu.Unlock()
		}
		return len(in)
	}}
	s, addr := startTLSServer(t, h, serverTLS(t), WithLoops(1), mode)
	idle := dialTLS(t, addr, clientTLS(t))
	busy := dialTLS(t, addr, clientTLS(t))
	busy.Write([]byte("hold"))
	testsupport.Eventually(t, 0, "held", func() bool { mu.Lock(); defer mu.Unlock(); return held != nil })
	hs := dial(t, "tcp", addr) // mid-handshake: sends nothing
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if _, err := io.ReadAll(idle); err != nil {
		t.Fatalf("idle: %v", err)
	}
	readUntilClosed(t, hs, testsupport.Scale(5*time.Second))
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a held connection", err)
	default:
	}
	held.Loop().Post(func() {
		held.Write([]byte("answer"))
		held.Release()
	})
	got, err := io.ReadAll(busy)
	if err != nil || string(got) != "answer" {
		t.Fatalf("busy got %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
