package reactor

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// helloSeeds are the fuzz seeds of the first bytes a TLS listener can receive: real
// ClientHellos for TLS 1.2 and 1.3, cut and extended, plaintext, and broken record headers.
func helloSeeds(f *testing.F) [][]byte {
	h13 := captureHello(f, clientTLS(f))
	cfg12 := clientTLS(f)
	cfg12.MaxVersion = tls.VersionTLS12
	h12 := captureHello(f, cfg12)
	// The 1.3 hello split into two handshake records (legal: RFC 8446 §5.1).
	split := append([]byte{22, 3, 1, 0, 10}, h13[5:15]...)
	split = append(split, 22, 3, 1, byte((len(h13)-15)>>8), byte(len(h13)-15))
	split = append(split, h13[15:]...)
	return [][]byte{
		h13, h12, split,
		h13[:len(h13)/2], h13[:5], h13[:1],
		append(bytes.Clone(h13), "GET / HTTP/1.1\r\n\r\n"...),
		append(bytes.Clone(h12), 21, 3, 3, 0, 2, 1, 0), // an alert after the hello
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{22, 3, 1, 0, 0},
		{22, 3, 1, 0xff, 0xff, 1},
		{22, 3, 3, 0, 4, 2, 0, 0, 0}, // a ServerHello first
		{22, 3, 3, 0, 4, 1, 0xff, 0xff, 0xff},
		{22, 2, 0},
		{0x80, 0x2e, 1, 3, 1}, // an SSLv2-style hello
	}
}

// FuzzClientHelloComplete: the loop's ClientHello framing check never panics, and its answer
// for a prefix of the input agrees with its answer for the whole: an error found in a prefix
// is the whole input's error (garbage is refused as early as it shows), and a hello complete in
// a prefix is complete in the whole.
func FuzzClientHelloComplete(f *testing.F) {
	for _, s := range helloSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 3000 {
			b = b[:3000]
		}
		full, fullPlain, fullErr := clientHelloComplete(b)
		if full && fullErr != nil {
			t.Fatalf("complete and error %v", fullErr)
		}
		for i := 1; i < len(b); i++ {
			done, plain, err := clientHelloComplete(b[:i])
			switch {
			case err != nil && (err != fullErr || plain != fullPlain):
				t.Fatalf("prefix %d: %v (plain %v), whole: %v (plain %v)", i, err, plain, fullErr, fullPlain)
			case done && !full:
				t.Fatalf("prefix %d complete, whole not (%v)", i, fullErr)
			case done:
				return // what follows the hello is crypto/tls's to judge
			}
		}
	})
}

// FuzzTLSFirstBytes sends each input as a client's first bytes to a TLS listener, then shuts
// the client's writing side: the server must close the connection (it may send an alert or the
// plaintext reply first) without calling the handler, and go on serving: a real handshake
// and an echo succeed after every input.
func FuzzTLSFirstBytes(f *testing.F) {
	for _, s := range helloSeeds(f) {
		f.Add(s)
	}
	var o openState
	s, err := NewServer(o.handler(echoData), WithLoops(1), WithTLSHandshakeTimeout(testsupport.Scale(5*time.Second)))
	if err != nil {
		f.Fatal(err)
	}
	reply := []byte("HTTP/1.0 400 Bad Request\r\n\r\nplaintext on a TLS port\n")
	a, err := s.Listen("tcp", "127.0.0.1:0", WithTLS(serverTLS(f)), WithTLSPlaintextReply(reply))
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	addr := a.String()
	f.Fuzz(func(t *testing.T, b []byte) {
		opened0, _, _ := o.snapshot()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetWriteDeadline(testsupport.Deadline(5 * time.Second))
		c.Write(b) // the server may close before reading it all
		c.(*net.TCPConn).CloseWrite()
		got := readUntilClosed(t, c, testsupport.Scale(10*time.Second))
		if bytes.HasPrefix(got, []byte("HTTP/")) && !bytes.Equal(got, reply) {
			t.Fatalf("server sent %q", got)
		}
		if opened, _, _ := o.snapshot(); opened != opened0 {
			t.Fatalf("the handler saw %d connections", opened-opened0)
		}
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: testsupport.Scale(5 * time.Second)}, "tcp", addr, clientTLS(t))
		if err != nil {
			t.Fatalf("a real client after the input: %v", err)
		}
		defer tc.Close()
		tc.SetDeadline(testsupport.Deadline(10 * time.Second))
		tc.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo after the input: %q %v", buf, err)
		}
		tc.Close()
		testsupport.Eventually(t, 0, "the real client's connection closed", func() bool {
			opened, closed, _ := o.snapshot()
			return opened == len(closed)
		})
	})
}
