package reactor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// testPKI is a throwaway CA with a server and a client certificate, made once per test binary.
type testPKI struct {
	caPEM  []byte
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

var (
	pkiOnce sync.Once
	pki     testPKI
)

func testCerts(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		caTmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "reactor test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		ca, _ := x509.ParseCertificate(caDER)
		pki.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
		pki.pool = x509.NewCertPool()
		pki.pool.AddCert(ca)
		leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(serial),
				Subject:      pkix.Name{CommonName: cn},
				DNSNames:     []string{cn},
				IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(24 * time.Hour),
				KeyUsage:     x509.KeyUsageDigitalSignature,
				ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
			if err != nil {
				panic(err)
			}
			return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
		}
		pki.server = leaf(2, "example.test", x509.ExtKeyUsageServerAuth)
		pki.client = leaf(3, "client.test", x509.ExtKeyUsageClientAuth)
	})
	return &pki
}

// serverTLS returns a server config with the test certificate.
func serverTLS(t testing.TB) *tls.Config {
	p := testCerts(t)
	return &tls.Config{Certificates: []tls.Certificate{p.server}}
}

// clientTLS returns a client config trusting the test CA, for server name example.test.
func clientTLS(t testing.TB) *tls.Config {
	p := testCerts(t)
	return &tls.Config{RootCAs: p.pool, ServerName: "example.test"}
}

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
