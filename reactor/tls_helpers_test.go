package reactor

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// testPKI is the test binary's certificate authority and certificates (testsupport.TestPKI).
type testPKI struct {
	caPEM  []byte
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func testCerts(t testing.TB) *testPKI {
	p := testsupport.TestPKI(t)
	return &testPKI{caPEM: p.CAPEM, pool: p.Pool, server: p.Server, client: p.Client}
}

// serverTLS returns a server config with the test certificate.
func serverTLS(t testing.TB) *tls.Config { return testsupport.TestPKI(t).ServerConfig() }

// clientTLS returns a client config trusting the test CA, for server name example.test.
func clientTLS(t testing.TB) *tls.Config { return testsupport.TestPKI(t).ClientConfig() }

// startTLSServer starts a server with one TLS listener on 127.0.0.1:0 and closes it at the end
// of the test.
func startTLSServer(t testing.TB, h Handler, cfg *tls.Config, opts ...Option) (*Server, string) {
	t.Helper()
	s, err := NewServer(h, opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	addr, err := s.Listen("tcp", "127.0.0.1:0", WithTLS(cfg))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

// dialTLS connects with cfg and completes the handshake.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: testsupport.Scale(5 * time.Second)}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	c.SetDeadline(testsupport.Deadline(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// hsModes are the two places handshakes run: tests of the handshake run in both.
var hsModes = []struct {
	name string
	opt  Option
}{
	{"on loop", WithTLSHandshakeOnLoop(true)},
	{"pool", WithTLSHandshakeOnLoop(false)},
}
