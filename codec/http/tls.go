package http

import (
	"crypto/tls"
	"net"
	"slices"

	"github.com/reactord/reactord/reactor"
)

// HTTPS. The reactor protects a TLS listener's records on its loops (reactor.WithTLS), so the
// codec sees plaintext exactly as on TCP: parsing, pipelining, deadlines, the adapter and
// Upgrade are unchanged. What the codec adds is HTTP's part: ALPN offers http/1.1, a client
// that speaks plain HTTP to the port gets a 400 instead of a silent close, and handlers see
// the negotiated state (ResponseWriter.TLS, the adapter's r.TLS, RequestInfo.TLS).

// PlaintextOnTLSReply is the response a client gets when it sends plain HTTP to a TLS listener
// opened by ListenTLS or with TLSListenOptions; the connection is closed after it. The words
// are net/http's, so clients and people see the same thing from both servers.
const PlaintextOnTLSReply = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

// alpnProtocols are the ALPN protocol IDs the codec speaks (RFC 7301 registry).
var alpnProtocols = []string{"http/1.1", "http/1.0"}

// TLSConfig returns cfg as the codec serves it: its NextProtos (ALPN) reduced to the
// protocols the codec speaks, "http/1.1" when none is left, so that a client offering h2 and
// http/1.1 (curl, browsers) settles on HTTP/1.1, and one offering only h2 is refused in the
// handshake rather than sent HTTP/1.1 it cannot read. cfg is returned as is when its
// NextProtos are already right, and otherwise cloned (tls.Config.Clone keeps callbacks such as
// GetCertificate); it is never modified. A nil cfg returns nil.
func TLSConfig(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	var protos []string
	for _, p := range cfg.NextProtos {
		if slices.Contains(alpnProtocols, p) && !slices.Contains(protos, p) {
			protos = append(protos, p)
		}
	}
	if len(protos) == 0 {
		protos = alpnProtocols[:1]
	}
	if slices.Equal(protos, cfg.NextProtos) {
		return cfg
	}
	c := cfg.Clone()
	c.NextProtos = protos
	return c
}

// TLSListenOptions returns the reactor listen options of an HTTPS listener with cfg (see
// TLSConfig): for sockets opened or inherited through the reactor directly
// (Reactor().ListenFdWith(fds, TLSListenOptions(cfg)...), ListenOn). ListenTLS uses them.
func TLSListenOptions(cfg *tls.Config) []reactor.ListenOption {
	return []reactor.ListenOption{
		reactor.WithTLS(TLSConfig(cfg)),
		reactor.WithTLSPlaintextReply([]byte(PlaintextOnTLSReply)),
	}
}

// ListenTLS opens a listening socket like Listen whose connections speak HTTPS with cfg, which
// must hold a certificate (Certificates, GetCertificate or GetConfigForClient). Handshakes run
// as the reactor's options say (reactor.WithTLSHandshakeOnLoop, WithTLSHandshakeLimit,
// WithTLSHandshakeTimeout, given through WithReactorOptions); a connection reaches the handler
// only once its handshake has completed. cfg is not modified (see TLSConfig); rotate
// certificates through GetCertificate. Errors: ErrInvalidArgument for a nil cfg or one without
// a certificate, and Listen's.
func (s *Server) ListenTLS(network, addr string, cfg *tls.Config) (net.Addr, error) {
	return s.rs.Listen(network, addr, TLSListenOptions(cfg)...)
}

// ListenAndServeTLS is NewServer, ListenTLS("tcp", addr, ...) with the certificate chain and key
// in certFile and keyFile (PEM), and Serve. The configuration allows TLS 1.2 and 1.3 with
// crypto/tls's default (modern) cipher suites. Errors as ListenAndServe, and the error of
// loading the files.
func ListenAndServeTLS(addr, certFile, keyFile string, h Handler, opts ...Option) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	s, err := NewServer(h, opts...)
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if _, err := s.ListenTLS("tcp", addr, cfg); err != nil {
		s.Close()
		return err
	}
	return s.Serve()
}

// TLS returns the negotiated TLS state of the request's connection (version, cipher suite,
// ServerName from SNI, NegotiatedProtocol from ALPN, PeerCertificates and VerifiedChains with
// client authentication), or nil on a connection without TLS or a writer that is not serving
// a Server's connection. The value is shared by every request of the connection and must not
// be modified; it may be kept and passed to other goroutines. The first call on a connection
// allocates it.
func (w *ResponseWriter) TLS() *tls.ConnectionState {
	if cs, ok := w.sink.(*conn); ok {
		return cs.c.TLS()
	}
	return nil
}

// TLS returns the negotiated TLS state of the exchange's connection, as ResponseWriter.TLS, or
// nil. Only during the Observer call; the value itself may be kept.
func (i *RequestInfo) TLS() *tls.ConnectionState {
	if i.conn == nil {
		return nil
	}
	return i.conn.TLS()
}
