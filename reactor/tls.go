package reactor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// TLS on the event loop.
//
// A listener opened with WithTLS speaks TLS (crypto/tls, unmodified) on its connections, and
// the Handler sees only plaintext: OnData gets decrypted bytes, Write takes bytes to encrypt.
// No goroutine belongs to an established connection. How:
//
//   - Handshake. crypto/tls runs a handshake as straight-line code whose state lives on the
//     calling goroutine's stack: a read that cannot be completed now cannot be resumed later
//     (an error from the transport during the handshake fails it for good, c.handshakeErr is
//     sticky). So each handshake runs on a goroutine of its own: by default a runtime
//     coroutine on the loop's thread, which the loop resumes when input has arrived and which
//     switches back when it needs more (tls_coro.go), or else a worker of a pool, fed by the
//     loop (tls_pool.go); WithTLSHandshakeOnLoop chooses, WithTLSHandshakeLimit bounds them.
//     The loop first collects the whole ClientHello itself, so a connection that sends nothing,
//     or something that is not TLS, never occupies a goroutine; the handshake timeout
//     (WithTLSHandshakeTimeout) runs on the connection's one timer from accept.
//   - Records. After the handshake the loop drives the tls.Conn itself: its transport's reads
//     take the ciphertext the loop received, or make at most one read(2) per readiness report,
//     and otherwise report "would block" as a temporary net.Error, which crypto/tls returns
//     without poisoning the connection (it keeps a partial record in its own buffer and
//     resumes it on the next Read). Writes append records to the connection's ciphertext
//     buffer. OnData, Write, the output buffer, watermarks and timeouts are those of a plain
//     connection; plaintext is sealed at flush time, so all output of one iteration becomes as
//     few records as possible.
//   - OnOpen runs once the handshake has completed, so Conn.TLS reports the negotiated state
//     from the first callback on; a connection whose handshake fails is closed without any
//     Handler call, and counted in Stats.
//
// The seam between the socket and the handler is the same for every I/O mode (see
// docs/IO_URING.md): input arrives as ciphertext either pulled by the transport with read(2)
// (readiness mode) or handed to it as a received buffer (tlsSession.rin), and output leaves as
// ciphertext in one buffer (tlsSession.cout) written like Conn.out.

// ListenOption configures one listening socket; pass options to Server.Listen. An option
// given a bad value makes Listen return an error wrapping ErrInvalidArgument.
type ListenOption func(*listenOptions)

type listenOptions struct {
	tls   *tls.Config
	plain []byte // reply to a client speaking plaintext on a TLS listener
	errs  []error
}

func (o *listenOptions) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...))
}

// WithTLS makes the listener's connections speak TLS with cfg, which must provide a
// certificate (Certificates, GetCertificate or GetConfigForClient). The reactor does not copy
// or modify cfg: as crypto/tls requires, do not change it once passed (rotate certificates
// with GetCertificate or GetConfigForClient instead). Handshakes run on the loops or a pool
// (WithTLSHandshakeOnLoop), bounded (WithTLSHandshakeLimit), within a timeout
// (WithTLSHandshakeTimeout); OnOpen is
// called once the handshake has completed, and Conn.TLS then reports its outcome. See the
// package documentation of TLS for what stays the same as on plain TCP (everything the
// Handler sees) and what differs (Conn.Fd must not be written to; SendFile streams file
// chunks through the loop, since the kernel cannot encrypt).
func WithTLS(cfg *tls.Config) ListenOption {
	return func(o *listenOptions) {
		switch {
		case cfg == nil:
			o.fail("WithTLS(nil)")
		case len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil:
			o.fail("WithTLS: the tls.Config has no certificate (Certificates, GetCertificate or GetConfigForClient)")
		default:
			o.tls = cfg
		}
	}
}

// WithTLSPlaintextReply sets the bytes written to a client that sends plaintext (its first
// byte is not a TLS record's) to a TLS listener, before the connection is closed: an HTTP
// codec answers "400 Bad Request" this way to a client that used http:// on an https port.
// The reactor copies b; at most 4 KiB. Default: the connection is closed without a reply.
func WithTLSPlaintextReply(b []byte) ListenOption {
	return func(o *listenOptions) {
		if len(b) > 4<<10 {
			o.fail("WithTLSPlaintextReply: %d bytes, want at most 4096", len(b))
			return
		}
		o.plain = append([]byte(nil), b...)
	}
}

func buildListenOptions(opts []ListenOption) (listenOptions, error) {
	var lo listenOptions
	for _, o := range opts {
		if o == nil {
			lo.fail("nil ListenOption")
			continue
		}
		o(&lo)
	}
	if len(lo.errs) > 0 {
		return lo, errors.Join(lo.errs...)
	}
	return lo, nil
}

// tlsListen is what a TLS listener gives each connection it accepts.
type tlsListen struct {
	cfg   *tls.Config
	plain []byte
}

func (lo *listenOptions) tlsListen() *tlsListen {
	if lo.tls == nil {
		return nil
	}
	return &tlsListen{cfg: lo.tls, plain: lo.plain}
}

// Defaults of the TLS options.
const (
	// DefaultTLSHandshakeTimeout bounds a handshake, from accept to its completion.
	DefaultTLSHandshakeTimeout = 10 * time.Second
)

// DefaultTLSHandshakeLimit returns the default bound on TLS handshakes in progress at once:
// 64 per GOMAXPROCS, at least 64.
func DefaultTLSHandshakeLimit() int { return max(64, 64*runtime.GOMAXPROCS(0)) }

// WithTLSHandshakeTimeout bounds a TLS handshake, from accept until it has completed: a
// client that sends nothing, stalls midway or handshakes too slowly is closed when it runs
// out (Stats.TLSHandshakeTimeouts). It includes the time a handshake waits for its turn.
// Default DefaultTLSHandshakeTimeout; d must be positive.
func WithTLSHandshakeTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail("WithTLSHandshakeTimeout(%v): want > 0", d)
			return
		}
		o.tlsTimeout = d
	}
}

// WithTLSHandshakeLimit bounds the TLS handshakes in progress at once (the server's TLS
// listeners share the bound): each holds a goroutine (a coroutine on its loop, or a pool
// worker; see WithTLSHandshakeOnLoop) from the moment its complete ClientHello has arrived
// until it ends, the client's round trip included. Handshakes beyond the bound wait in a
// queue, without a goroutine, within their timeout; connections that have not sent a whole
// ClientHello never count. On the loops the bound is shared out evenly, each loop running at
// most its share (rounded up). Default DefaultTLSHandshakeLimit(); allowed 1 to 1<<16.
func WithTLSHandshakeLimit(n int) Option {
	return func(o *options) {
		if n < 1 || n > 1<<16 {
			o.fail("WithTLSHandshakeLimit(%d): want 1..65536", n)
			return
		}
		o.tlsLimit = n
	}
}

// WithTLSHandshakeOnLoop chooses where TLS handshakes run. On (the default), each runs as a
// coroutine on its connection's loop, on the loop's own thread: it costs no thread hand-off,
// but its CPU time (a fraction of a millisecond for an ECDSA certificate, a few for RSA) is
// spent inside the loop's iteration, and the tls.Config callbacks (GetCertificate,
// GetConfigForClient, VerifyPeerCertificate, ...) run there and must not block. Off, they run
// on a pool of goroutines that start on demand and exit after a few seconds without work: the
// callbacks may block (a certificate fetched over the network), at the price of two thread
// hand-offs per handshake. Either way WithTLSHandshakeLimit bounds them and nothing changes
// for the Handler.
func WithTLSHandshakeOnLoop(on bool) Option {
	return func(o *options) { o.tlsOnLoop = on }
}

// TLS returns the negotiated state of a TLS connection (version, cipher suite, server name
// from SNI, ALPN protocol, peer certificates), or nil for a connection without TLS. It is
// computed on the first call and cached: the value is shared, must not be modified, and may
// be passed to other goroutines. Loop goroutine only.
func (c *Conn) TLS() *tls.ConnectionState {
	ts := c.tls
	if ts == nil || ts.tc == nil || c.flags&fHandshake != 0 {
		return nil
	}
	if ts.state == nil {
		st := ts.tc.ConnectionState()
		ts.state = &st
	}
	return ts.state
}
