package servers

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

const okResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" + Body

// acceptRequest accepts one connection on ln and reads one request head from it. A readiness
// check that only connects and closes sends nothing: that is the failure this reports.
func acceptRequest(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(testsupport.Scale(5 * time.Second)))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		c.Close()
		t.Fatalf("the readiness check sent no request before it would report ready: %v", err)
	}
	if req.Method != "GET" || req.URL.Path != "/" {
		c.Close()
		t.Fatalf("readiness request %s %s", req.Method, req.URL)
	}
	return c
}

// TestWaitServingWaitsForAnAnswer is the start-up nginx has: its socket listens (the kernel
// completes handshakes) long before its event loop answers. Ready must mean answered.
func TestWaitServingWaitsForAnAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		done <- waitServing(context.Background(), ln.Addr().String(), make(chan error, 1), testsupport.Scale(10*time.Second))
	}()
	c := acceptRequest(t, ln) // connected and asked, not yet answered
	defer c.Close()
	select {
	case err := <-done:
		t.Fatalf("ready before the server answered: %v", err)
	default:
	}
	if _, err := c.Write([]byte(okResponse)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("after the answer: %v", err)
	}
}

// TestWaitServingWrongAnswer: a server that answers, but not with the harness's response, is
// misconfigured; retrying cannot help, so the first such answer is the error.
func TestWaitServingWrongAnswer(t *testing.T) {
	for _, tt := range []struct{ name, resp, want string }{
		{"status", "HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\n" + Body, "status 404"},
		{"body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHello", `body "Hello"`},
		{"not http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", "invalid response"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go func() {
				done <- waitServing(context.Background(), ln.Addr().String(), make(chan error, 1), testsupport.Scale(10*time.Second))
			}()
			c := acceptRequest(t, ln)
			defer c.Close()
			if _, err := c.Write([]byte(tt.resp)); err != nil {
				t.Fatal(err)
			}
			err = <-done
			if !errors.Is(err, errWrongAnswer) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want errWrongAnswer with %q", err, tt.want)
			}
		})
	}
}

// TestWaitServingLargeAnswer: a 200 longer than the probe reads (a proxy in front of the blob
// upstream of the memory run) is a server serving; a large error page is not.
func TestWaitServingLargeAnswer(t *testing.T) {
	big := strings.Repeat("b", 1<<20)
	for _, tt := range []struct {
		name, resp string
		ok         bool
	}{
		{"200", "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + big, true},
		{"502", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 1048576\r\n\r\n" + big, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go func() {
				done <- waitServing(context.Background(), ln.Addr().String(), make(chan error, 1), testsupport.Scale(10*time.Second))
			}()
			c := acceptRequest(t, ln)
			defer c.Close()
			go c.Write([]byte(tt.resp)) // the probe stops reading after its buffer
			err = <-done
			if tt.ok != (err == nil) || !tt.ok && !errors.Is(err, errWrongAnswer) {
				t.Fatalf("got %v, want success %v", err, tt.ok)
			}
		})
	}
}

// TestWaitServingProcessExited: nothing listens and the process has ended; the exit is
// reported and left on the channel for the instance's Close.
func TestWaitServingProcessExited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on
	exited := make(chan error, 1)
	exited <- errors.New("exit status 1")
	err = waitServing(context.Background(), addr, exited, testsupport.Scale(10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "exited before serving: exit status 1") {
		t.Fatalf("got %v", err)
	}
	if len(exited) != 1 {
		t.Fatal("the exit status was not put back for Close")
	}
}

// TestWaitServingContextEnds: a server that accepts and never answers holds the check only
// until the caller gives up.
func TestWaitServingContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- waitServing(ctx, ln.Addr().String(), make(chan error, 1), time.Hour)
	}()
	c := acceptRequest(t, ln)
	defer c.Close()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("waitServing did not return after its context ended")
	}
}
