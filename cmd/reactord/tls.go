package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reactord/reactord/cmd/reactord/internal/config"
	codec "github.com/reactord/reactord/codec/http"
)

// HTTPS in the daemon.
//
// The -tls-listen sockets are served by the same codec server as -listen (one set of loops,
// one app), with the reactor protecting the records on the loops (reactor.WithTLS; no kernel
// TLS here). The certificate is not fixed in the tls.Config: every handshake asks certStore
// for it, so a reload that only renews the certificate swaps one pointer, and every
// established connection, mid-request or idle, carries on untouched. A reload that changes
// other keys builds a new generation as usual, with the certificate it loaded.

// certStore is the certificate the HTTPS listeners present, shared by the process's
// generations. get runs on the loops (inside handshakes); set on the control goroutine.
type certStore struct {
	cur atomic.Pointer[loadedCert]
}

// loadedCert is one certificate chain and key as read from -tls-cert and -tls-key, with the
// bytes they came from, so a reload can tell whether the files changed.
type loadedCert struct {
	cert      tls.Certificate
	certPEM   []byte
	keyPEM    []byte
	notAfter  time.Time
	certPath  string
	keyPath   string
	loadedAt  time.Time
	commonNam string
}

// get is the tls.Config's GetCertificate: the certificate in force. It never fails once the
// daemon serves (a store is set before its listeners open).
func (s *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cur.Load(); c != nil {
		return &c.cert, nil
	}
	return nil, errors.New("reactord: no certificate loaded")
}

// set puts c in force for the handshakes that start from now on and returns the previous one.
func (s *certStore) set(c *loadedCert) *loadedCert { return s.cur.Swap(c) }

// same reports whether c holds the same files' content as the one in force.
func (s *certStore) same(c *loadedCert) bool {
	old := s.cur.Load()
	return old != nil && c != nil && bytes.Equal(old.certPEM, c.certPEM) && bytes.Equal(old.keyPEM, c.keyPEM)
}

// loadCert reads and checks the configured certificate and key. Every problem is a
// *config.Error on tls-cert or tls-key, so a bad pair stops the daemon before it binds
// anything (exit 2, one line), and fails a reload with the running certificate kept. nil,
// nil without -tls-listen.
func loadCert(cfg config.Config) (*loadedCert, error) {
	if len(cfg.TLSListen) == 0 {
		return nil, nil
	}
	certPEM, err := os.ReadFile(cfg.TLSCert)
	if err != nil {
		return nil, &config.Error{Key: "tls-cert", Reason: err.Error()}
	}
	keyPEM, err := os.ReadFile(cfg.TLSKey)
	if err != nil {
		return nil, &config.Error{Key: "tls-key", Reason: err.Error()}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's words name the problem ("private key does not match public key",
		// "failed to find any PEM data in certificate input", ...).
		return nil, &config.Error{Key: "tls-cert", Reason: fmt.Sprintf("%s with %s: %v", cfg.TLSCert, cfg.TLSKey, err)}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, &config.Error{Key: "tls-cert", Reason: fmt.Sprintf("%s: %v", cfg.TLSCert, err)}
	}
	cert.Leaf = leaf
	now := time.Now()
	if now.After(leaf.NotAfter) {
		return nil, &config.Error{Key: "tls-cert", Reason: fmt.Sprintf("%s expired on %s", cfg.TLSCert, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	return &loadedCert{
		cert: cert, certPEM: certPEM, keyPEM: keyPEM, notAfter: leaf.NotAfter,
		certPath: cfg.TLSCert, keyPath: cfg.TLSKey, loadedAt: now, commonNam: leaf.Subject.CommonName,
	}, nil
}

// modernSuites are the TLS 1.2 cipher suites the daemon accepts: ECDHE key exchange (forward
// secrecy) with an AEAD, nothing with CBC, RSA key exchange or 3DES. TLS 1.3's suites are
// all AEADs and not configurable in crypto/tls.
var modernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLSConfig is the configuration of the daemon's HTTPS listeners: TLS 1.2 and 1.3,
// modern suites only, ALPN http/1.1 (the codec's TLSConfig), the certificate from store.
func serverTLSConfig(store *certStore) *tls.Config {
	return codec.TLSConfig(&tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   modernSuites,
		GetCertificate: store.get,
		NextProtos:     []string{"http/1.1"},
	})
}

// hstsValue is the Strict-Transport-Security field for -hsts, or "" when off.
func hstsValue(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return "max-age=" + strconv.FormatInt(int64(d/time.Second), 10)
}

// redirectTarget is the Location of -redirect-http for a request with host (its Host field,
// possibly with a port) and target (origin-form), to the TLS listener's port tlsPort (443 is
// left implicit). A request without a usable Host gets "" (answered 400 by the caller: there
// is nowhere to send it).
func redirectTarget(host, target, tlsPort string) string {
	if host == "" || strings.ContainsAny(host, "/\\@ \t") {
		return ""
	}
	name := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		name = host[:i]
	}
	if name == "" {
		return ""
	}
	if tlsPort != "" && tlsPort != "443" {
		name += ":" + tlsPort
	}
	if target == "" || target[0] != '/' {
		target = "/"
	}
	return "https://" + name + target
}
