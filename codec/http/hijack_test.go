package http

import (
	"bufio"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// hijackEcho hijacks the connection, answers with a hand-made 101, then echoes every line
// until "bye", checking the net.Conn's addresses and deadlines on the way.
func hijackEcho(t *testing.T, done chan<- error) nethttp.HandlerFunc {
	return func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nc, brw, err := w.(nethttp.Hijacker).Hijack()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		if brw.Reader.Buffered() != 0 {
			done <- errors.New("bytes buffered in the returned reader")
			return
		}
		if nc.LocalAddr() == nil || nc.RemoteAddr() == nil || nc.RemoteAddr().String() != r.RemoteAddr {
			done <- errors.New("addresses: " + r.RemoteAddr)
			return
		}
		// A read deadline in the past fails the read at once, and the conn stays usable.
		nc.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			done <- errors.New("read past the deadline: " + errString(err))
			return
		}
		nc.SetReadDeadline(time.Time{})
		io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(nc)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				done <- err
				return
			}
			if _, err := io.WriteString(nc, "echo "+line); err != nil {
				done <- err
				return
			}
			if line == "bye\n" {
				done <- nil
				return
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestAdapterHijackEcho: Hijack hands the connection over with the bytes the client sent right
// after the request (in the same write), and the net.Conn reads, writes, honours deadlines and
// closes.
func TestAdapterHijackEcho(t *testing.T) {
	done := make(chan error, 1)
	s, addr := startServer(t, Adapt(hijackEcho(t, done)))
	cl := dialClient(t, addr)
	cl.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly\n")
	resp, err := nethttp.ReadResponse(cl.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v (handler: %v)", resp, err, <-done)
	}
	for _, line := range []string{"early\n", "second\n", strings.Repeat("x", 300<<10) + "\n", "bye\n"} {
		if !strings.HasPrefix(line, "early") {
			cl.send(line)
		}
		got, err := cl.br.ReadString('\n')
		if err != nil || got != "echo "+line {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(line), len(got), err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("handler: %v", err)
	}
	if !cl.closed() {
		t.Fatal("connection open after the hijacker closed it")
	}
	if st := s.Stats(); st.Hijacked != 1 {
		t.Fatalf("Stats.Hijacked = %d", st.Hijacked)
	}
}

// TestAdapterHijackAfterWriteHeader101: the coder/websocket way — WriteHeader(101), then
// Hijack: the 101 head with the handler's headers is sent before Hijack returns.
func TestAdapterHijackAfterWriteHeader101(t *testing.T) {
	done := make(chan error, 1)
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.Header().Set("X-Extra", "1")
		w.WriteHeader(nethttp.StatusSwitchingProtocols)
		nc, _, err := w.(nethttp.Hijacker).Hijack()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(nc, buf); err != nil {
			done <- err
			return
		}
		_, err = nc.Write(buf)
		done <- err
	})))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := nethttp.ReadResponse(cl.br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" ||
		resp.Header.Get("Connection") != "Upgrade" || resp.Header.Get("X-Extra") != "1" {
		t.Fatalf("101: %v %v", resp, err)
	}
	cl.send("ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(cl.br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAdapterHijackClientGoes: the hijacker's Read sees EOF when the client closes, and its
// writes then fail; nothing leaks.
func TestAdapterHijackClientGoes(t *testing.T) {
	done := make(chan error, 2)
	s, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nc, _, err := w.(nethttp.Hijacker).Hijack()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		_, err = nc.Read(make([]byte, 1))
		done <- err
		testsupport.Eventually(t, 0, "writes to fail", func() bool {
			_, err := nc.Write([]byte("x"))
			return err != nil
		})
		done <- nil
	})))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	testsupport.Eventually(t, 0, "the hijack", func() bool { return s.Stats().Hijacked == 1 })
	cl.c.Close()
	if err := <-done; err != io.EOF {
		t.Fatalf("Read after the client closed: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 0, "the server to close", func() bool { return s.Stats().ConnsOpen == 0 })
}

// TestAdapterHijackPipelinedRefused: a safe request with pipelined successors already running
// cannot be hijacked, and the connection stays in HTTP.
func TestAdapterHijackPipelinedRefused(t *testing.T) {
	release := make(chan struct{})
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path == "/second" {
			<-release
			io.WriteString(w, "second")
			return
		}
		_, _, err := w.(nethttp.Hijacker).Hijack()
		close(release)
		if !errors.Is(err, ErrHijackPipelined) {
			t.Errorf("Hijack: %v", err)
		}
		io.WriteString(w, "first")
	})))
	cl := dialClient(t, addr)
	cl.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"first", "second"} {
		if _, body := cl.read("GET"); body != want {
			t.Fatalf("%q, want %q", body, want)
		}
	}
}

// TestAdapterHijackThenReturnWithoutClose: a handler that hijacks and returns without closing
// leaves the connection to the client (it stays open, served by the loop), and Server.Close
// closes it.
func TestAdapterHijackThenReturnWithoutClose(t *testing.T) {
	kept := make(chan net.Conn, 1)
	s, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nc, _, err := w.(nethttp.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		io.WriteString(nc, "hijacked\n")
		kept <- nc
	})))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	if line, err := cl.br.ReadString('\n'); err != nil || line != "hijacked\n" {
		t.Fatalf("%q %v", line, err)
	}
	nc := <-kept
	cl.send("after return\n")
	buf := make([]byte, len("after return\n"))
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "after return\n" {
		t.Fatalf("read after the handler returned: %q %v", buf, err)
	}
	s.Close()
	if !cl.closed() {
		t.Fatal("hijacked connection open after Server.Close")
	}
	if _, err := nc.Read(buf); err == nil {
		t.Fatal("Read after Server.Close succeeded")
	}
}
