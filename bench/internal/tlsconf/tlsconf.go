// Package tlsconf gives the harness's servers and load generators their TLS settings: a
// self-signed certificate of the kind asked for (ECDSA P-256 or RSA-2048), made once per
// process, a server configuration every TLS-capable server uses unchanged (HTTP/1.1 by ALPN,
// crypto/tls's defaults otherwise, so that the record layer and the key exchange cost the same
// for every Go server), and a client configuration that makes a full handshake on every new
// connection (no session cache) and does not verify the certificate (a client's cost, not the
// server's).
package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// Certificate kinds.
const (
	ECDSA = "ecdsa" // P-256
	RSA   = "rsa"   // 2048 bits
)

// ErrKind is returned for a kind that is neither ECDSA nor RSA.
var ErrKind = errors.New("tlsconf: certificate kind must be ecdsa or rsa")

// Kinds lists the certificate kinds.
func Kinds() []string { return []string{ECDSA, RSA} }

var (
	mu    sync.Mutex
	certs = map[string]tls.Certificate{}
)

// Certificate returns the process's self-signed certificate of kind, for 127.0.0.1 and
// localhost, made on first use.
func Certificate(kind string) (tls.Certificate, error) {
	mu.Lock()
	defer mu.Unlock()
	if c, ok := certs[kind]; ok {
		return c, nil
	}
	var key crypto.Signer
	var err error
	switch kind {
	case ECDSA:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return tls.Certificate{}, fmt.Errorf("%w: %q", ErrKind, kind)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	certs[kind] = c
	return c, nil
}

// PEM returns the certificate and key of kind as PEM, for servers configured by files (nginx).
func PEM(kind string) (certPEM, keyPEM []byte, err error) {
	c, err := Certificate(kind)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Server returns the server configuration for kind: the certificate, ALPN http/1.1 only (no
// server may switch to HTTP/2), crypto/tls's defaults for versions, suites and groups.
func Server(kind string) (*tls.Config, error) {
	c, err := Certificate(kind)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, NextProtos: []string{"http/1.1"}}, nil
}

// Client returns the load generators' configuration: no verification, no session cache (every
// connection makes a full handshake), ALPN http/1.1.
func Client() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}} //nolint:gosec // a benchmark client on loopback
}
