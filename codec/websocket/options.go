package websocket

import (
	"compress/flate"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	rhttp "github.com/reactord/reactord/codec/http"
)

// Defaults of the options.
const (
	// DefaultMaxMessageSize bounds a message (after decompression) and a frame: a larger one
	// is answered with close code 1009.
	DefaultMaxMessageSize = 1 << 20
	// DefaultSendLimit bounds the output queued for a connection's loop (see WithSendLimit).
	DefaultSendLimit = 1 << 20
	// DefaultCloseTimeout bounds the wait for the peer's answer to a close frame.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultCompressMinSize is the size under which a message is sent uncompressed even on a
	// connection that negotiated permessage-deflate: deflate's framing costs more than it
	// saves on a few bytes.
	DefaultCompressMinSize = 128
	// MaxMessageSizeLimit is the largest value WithMaxMessageSize and WithMaxFrameSize accept.
	MaxMessageSizeLimit = 1 << 30
)

// SlowConsumerPolicy says what happens to a message sent to a connection whose pending output
// is at the send limit (WithSendLimit): the peer reads more slowly than the server writes.
// Either way memory stays bounded: by the limit plus one message per connection.
type SlowConsumerPolicy uint8

const (
	// SlowConsumerDrop refuses the message: Send returns ErrOutputFull, a broadcast skips the
	// connection, and Stats.Dropped counts it. The connection stays open. The default.
	SlowConsumerDrop SlowConsumerPolicy = iota
	// SlowConsumerClose fails the connection: a close frame with ClosePolicyViolation is
	// queued (beyond the limit) and the connection closes once the peer answers it or the
	// close timeout passes. Send returns ErrOutputFull.
	SlowConsumerClose
)

// String returns "drop" or "close".
func (p SlowConsumerPolicy) String() string {
	switch p {
	case SlowConsumerDrop:
		return "drop"
	case SlowConsumerClose:
		return "close"
	}
	return fmt.Sprintf("SlowConsumerPolicy(%d)", uint8(p))
}

// Compression configures permessage-deflate (RFC 7692), passed to WithCompression. The zero
// value is a sound default: level 1, no context takeover in either direction, messages under
// DefaultCompressMinSize sent plain.
//
// Context takeover keeps the LZ77 window from one message to the next, so a stream of similar
// messages compresses much better, at a memory price per connection: the server's compressor
// (ServerContextTakeover; several hundred KiB with compress/flate) and a 32 KiB window of the
// client's output (ClientContextTakeover). Without it the server answers with
// server_no_context_takeover and client_no_context_takeover, compresses each message with a
// compressor shared by the goroutines that send, and decompresses with one per loop: no
// per-connection compression memory at all, and a broadcast is compressed once for all.
//
// Window bits: compress/flate always decompresses with a 32 KiB window, so any
// client_max_window_bits the client uses is fine and the server never asks for a smaller one.
// It cannot compress with a window smaller than 32 KiB, so when a client offers
// server_max_window_bits below 15 the server accepts the offer and compresses that
// connection's messages with Huffman coding only (flate.HuffmanOnly): no back-references at
// all, which is valid under any window size, at a lower ratio (docs/BENCHMARKS.md measures it).
type Compression struct {
	// Level is the compress/flate level: 1 (flate.BestSpeed) to 9, or flate.HuffmanOnly
	// (-2). 0 means 1. Levels above 1 cost far more CPU, and with no context takeover each
	// message pays for resetting the compressor's hash tables.
	Level int
	// MinSize is the size below which messages are sent uncompressed; 0 means
	// DefaultCompressMinSize, negative compresses everything.
	MinSize int
	// ServerContextTakeover keeps the server's compressor (its window) across messages.
	ServerContextTakeover bool
	// ClientContextTakeover lets the client keep its window across messages; the server then
	// keeps the last 32 KiB of each connection's decompressed input.
	ClientContextTakeover bool
}

// Option configures an Upgrader; pass options to NewUpgrader. A bad value makes NewUpgrader
// return an error wrapping ErrInvalidOption.
type Option func(*config)

type config struct {
	subprotocols []string
	checkOrigin  func(r *rhttp.Request) bool
	maxMessage   int
	maxFrame     int
	pingEvery    time.Duration
	pongWait     time.Duration
	closeWait    time.Duration
	sendLimit    int
	policy       SlowConsumerPolicy
	compress     *Compression
	logger       *zap.Logger
	errs         []error
}

func defaultConfig() config {
	return config{
		maxMessage: DefaultMaxMessageSize,
		sendLimit:  DefaultSendLimit,
		closeWait:  DefaultCloseTimeout,
		logger:     zap.NewNop(),
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

func (c *config) err() error { return errors.Join(c.errs...) }

// WithSubprotocols sets the subprotocols the server speaks, most preferred first. The first
// of them that the client offers in Sec-WebSocket-Protocol is selected (Conn.Subprotocol);
// when the client offers none of them, or none at all, the connection has no subprotocol.
// Each name must be a non-empty HTTP token.
func WithSubprotocols(names ...string) Option {
	return func(c *config) {
		for _, n := range names {
			if !isToken(n) {
				c.fail("WithSubprotocols: %q is not a token", n)
				return
			}
		}
		c.subprotocols = append([]string(nil), names...)
	}
}

// WithOriginCheck sets the function that accepts or refuses a handshake by its request
// (typically by its Origin header); a refused one is answered with 403. It runs on the loop
// goroutine, and r is valid only during the call. The default accepts a request without
// Origin (not a browser) or whose Origin's host equals the Host header, which stops other
// sites' pages from opening connections with the user's cookies (cross-site WebSocket
// hijacking). AllowAnyOrigin accepts everything. nil restores the default.
func WithOriginCheck(f func(r *rhttp.Request) bool) Option {
	return func(c *config) { c.checkOrigin = f }
}

// AllowAnyOrigin is an origin check that accepts every request, for servers that
// authenticate by other means than cookies (tokens in the first message, say).
func AllowAnyOrigin(*rhttp.Request) bool { return true }

// WithMaxMessageSize bounds a message's size (after decompression, fragments together); a
// larger one fails the connection with 1009 as soon as its size is known. 1 to
// MaxMessageSizeLimit; default DefaultMaxMessageSize. It also lowers the frame limit to n
// unless WithMaxFrameSize sets that.
func WithMaxMessageSize(n int) Option {
	return func(c *config) {
		if n < 1 || n > MaxMessageSizeLimit {
			c.fail("WithMaxMessageSize(%d): want 1..%d", n, MaxMessageSizeLimit)
			return
		}
		c.maxMessage = n
	}
}

// WithMaxFrameSize bounds a single frame's payload (1009 beyond it), for servers that want
// small frames even in large fragmented messages. 1 to MaxMessageSizeLimit; default: the
// message limit.
func WithMaxFrameSize(n int) Option {
	return func(c *config) {
		if n < 1 || n > MaxMessageSizeLimit {
			c.fail("WithMaxFrameSize(%d): want 1..%d", n, MaxMessageSizeLimit)
			return
		}
		c.maxFrame = n
	}
}

// WithKeepalive pings a connection that has sent nothing for every, and closes it (OnClose
// gets ErrPongTimeout) when no pong arrives within pongTimeout of the ping. The timer is the
// loop's, one per connection, re-armed lazily: a busy connection costs nothing. every = 0
// turns keepalive off (the default); pongTimeout = 0 means every. Neither may be negative.
func WithKeepalive(every, pongTimeout time.Duration) Option {
	return func(c *config) {
		if every < 0 || pongTimeout < 0 {
			c.fail("WithKeepalive(%v, %v): negative", every, pongTimeout)
			return
		}
		if pongTimeout == 0 {
			pongTimeout = every
		}
		c.pingEvery, c.pongWait = every, pongTimeout
	}
}

// WithCloseTimeout bounds the wait for the peer's close frame after the server sent one (on
// Close, a protocol error, shutdown), and for the peer to go away after a failure; then the
// connection is closed at once. Positive; default DefaultCloseTimeout.
func WithCloseTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("WithCloseTimeout(%v): want > 0", d)
			return
		}
		c.closeWait = d
	}
}

// WithSendLimit bounds what a connection may have queued for the loop and not yet handed to
// the reactor connection (the messages sent from other goroutines since the loop last ran
// it). The slow-consumer policy applies when a message would take that queue past n, and
// also while the reactor connection's output is at its high-water mark (reactor.WithWatermarks,
// 1 MiB by default), until the peer has read it down to the low-water mark. Pending output is
// thus bounded by the high-water mark plus n plus one message: a single message larger than
// n is still accepted when nothing is queued. Positive; default DefaultSendLimit.
func WithSendLimit(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.fail("WithSendLimit(%d): want > 0", n)
			return
		}
		c.sendLimit = n
	}
}

// WithSlowConsumerPolicy sets what happens to messages for a connection at its send limit:
// SlowConsumerDrop (the default) or SlowConsumerClose. Producers on other goroutines that
// would rather wait use Conn.SendWait; handlers on the loop implement WritableHandler.
func WithSlowConsumerPolicy(p SlowConsumerPolicy) Option {
	return func(c *config) {
		if p > SlowConsumerClose {
			c.fail("WithSlowConsumerPolicy(%d): unknown policy", uint8(p))
			return
		}
		c.policy = p
	}
}

// WithCompression accepts permessage-deflate when a client offers it, configured by cc (see
// Compression). Without this option the extension is never negotiated.
func WithCompression(cc Compression) Option {
	return func(c *config) {
		switch {
		case cc.Level == 0:
			cc.Level = flate.BestSpeed
		case cc.Level != flate.HuffmanOnly && (cc.Level < flate.BestSpeed || cc.Level > flate.BestCompression):
			c.fail("WithCompression: Level %d: want 1..9 or flate.HuffmanOnly", cc.Level)
			return
		}
		if cc.MinSize == 0 {
			cc.MinSize = DefaultCompressMinSize
		}
		c.compress = &cc
	}
}

// WithLogger sets the logger for rare events: a handler panic (the connection is failed with
// 1011). Default zap.NewNop(); nil is an error.
func WithLogger(l *zap.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger(nil)")
			return
		}
		c.logger = l
	}
}
