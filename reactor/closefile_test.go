package reactor

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestCloseAfterLargeResponse: a handler answers with more than the socket takes at once and
// closes the connection (an HTTP response with "Connection: close"); the client, reading
// slowly through a small receive buffer, must get every byte and then a clean end of stream
// (FIN), never a reset. The server's send buffer is small too, so the rest of the response
// waits for room in the socket while the connection is already closing: in the completion
// mode that is a send the kernel continues, or, for a file, sendfile(2) resumed after the
// ring's poll for room. Every backend, plain and TLS, bytes and SendFile, and with the client
// still sending (a request body the handler refused) while the response drains: the
// lingering close (linger.go) reads and drops that input, where a plain close(2) would answer
// it with a reset that destroys the end of the response.
func TestCloseAfterLargeResponse(t *testing.T) {
	const size = 256 << 10
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	path := filepath.Join(t.TempDir(), "body.bin")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	head := []byte("HEAD\n")
	cases := []struct {
		name     string
		tls      bool
		file     bool // SendFile instead of Write
		trailing bool // the client keeps sending after its request
	}{
		{"write", false, false, false},
		{"sendfile", false, true, false},
		{"write/input pending", false, false, true},
		{"sendfile/input pending", false, true, true},
		{"tls/write", true, false, false},
		{"tls/sendfile", true, true, false},
		{"tls/write/input pending", true, false, true},
	}
	for _, b := range backends(t) {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
					if c.Context() != nil {
						return len(in) // the request is answered; the rest is discarded
					}
					c.SetContext(true)
					c.Write(head)
					if tc.file {
						f, err := os.Open(path)
						if err != nil {
							t.Error(err)
							c.CloseNow()
							return len(in)
						}
						err = c.SendFile(f, 0, int64(len(body)))
						f.Close()
						if err != nil {
							t.Error(err)
						}
					} else {
						c.Write(body)
					}
					c.Close()
					return len(in)
				}}
				opts := []Option{WithPoller(b.Name), WithLoops(1), WithSocketBuffers(0, 4096)}
				var addr string
				if tc.tls {
					_, addr = startTLSServer(t, h, serverTLS(t), opts...)
				} else {
					_, addr = startServer(t, h, opts...)
				}
				d := net.Dialer{Timeout: testsupport.Scale(5 * time.Second), Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
				}}
				raw, err := d.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				raw.SetDeadline(testsupport.Deadline(30 * time.Second))
				cl := raw
				if tc.tls {
					tcl := tls.Client(raw, clientTLS(t))
					if err := tcl.Handshake(); err != nil {
						t.Fatal(err)
					}
					cl = tcl
				}
				if _, err := cl.Write([]byte("GET\n")); err != nil {
					t.Fatal(err)
				}
				sent := make(chan error, 1)
				if tc.trailing {
					go func() {
						chunk := make([]byte, 16<<10)
						for range 64 {
							if _, err := cl.Write(chunk); err != nil {
								sent <- err
								return
							}
						}
						sent <- nil
					}()
				}
				var got []byte
				buf := make([]byte, 512)
				var rerr error
				for {
					n, err := cl.Read(buf)
					got = append(got, buf[:n]...)
					if err != nil {
						rerr = err
						break
					}
				}
				if tc.trailing {
					<-sent // a write refused by the closed connection is expected
				}
				want := len(head) + len(body)
				if !errors.Is(rerr, io.EOF) || len(got) != want {
					t.Fatalf("got %d of %d bytes, then %v", len(got), want, rerr)
				}
				if !bytes.Equal(got[len(head):], body) {
					t.Fatal("body corrupted")
				}
			})
		}
	}
}
