package testsupport

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
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority with a server certificate (for "example.test",
// "localhost" and 127.0.0.1) and a client certificate ("client.test"), all ECDSA P-256, for
// tests of TLS. One is made per test binary (TestPKI).
type PKI struct {
	CAPEM  []byte         // the CA certificate, PEM
	Pool   *x509.CertPool // the CA, for RootCAs and ClientCAs
	Server tls.Certificate
	Client tls.Certificate
	// ServerCertPEM and ServerKeyPEM are Server as files would hold them (PEM; the chain
	// includes the CA).
	ServerCertPEM, ServerKeyPEM []byte

	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	serial atomic.Int64
}

var (
	pkiOnce sync.Once
	pki     PKI
	pkiErr  error
)

// TestPKI returns the test binary's PKI, made on first use.
func TestPKI(t testing.TB) *PKI {
	t.Helper()
	pkiOnce.Do(func() { pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatalf("test PKI: %v", pkiErr)
	}
	return &pki
}

func makePKI() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "reactord test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	pki.caKey, pki.caCert = caKey, ca
	pki.serial.Store(3)
	pki.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pki.Pool = x509.NewCertPool()
	pki.Pool.AddCert(ca)
	if pki.Server, pki.ServerCertPEM, pki.ServerKeyPEM, err = pki.leaf(2, "example.test", x509.ExtKeyUsageServerAuth); err != nil {
		return err
	}
	pki.Client, _, _, err = pki.leaf(3, "client.test", x509.ExtKeyUsageClientAuth)
	return err
}

// IssueServer issues another server certificate from the CA, with the names of Server and a
// serial number of its own (returned, as it shows in the peer's certificate), as PEM files
// hold it: for tests of certificate rotation.
func (p *PKI) IssueServer(t testing.TB) (certPEM, keyPEM []byte, serial int64) {
	t.Helper()
	serial = p.serial.Add(1)
	_, certPEM, keyPEM, err := p.leaf(serial, "example.test", x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatalf("issue server certificate: %v", err)
	}
	return certPEM, keyPEM, serial
}

// leaf issues a certificate for cn (plus localhost and the loopback addresses) signed by the CA.
func (p *PKI) leaf(serial int64, cn string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte, error) {
	ca, caKey, caDER := p.caCert, p.caKey, p.caCert.Raw
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	certPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), p.CAPEM...)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, certPEM, keyPEM, nil
}

// ServerConfig returns a server configuration with the PKI's server certificate.
func (p *PKI) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Server}}
}

// ClientConfig returns a client configuration that trusts the CA, for server name
// example.test.
func (p *PKI) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.Pool, ServerName: "example.test"}
}

// WriteFiles writes the CA certificate, the server certificate chain and its key as PEM files
// in dir and returns their paths (for curl, openssl and the daemon's -tls-cert/-tls-key).
func (p *PKI) WriteFiles(t testing.TB, dir string) (ca, cert, key string) {
	t.Helper()
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, b := range map[string][]byte{ca: p.CAPEM, cert: p.ServerCertPEM, key: p.ServerKeyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}
