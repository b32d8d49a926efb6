package reactor

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"go.uber.org/zap"
)

// LoadBalancing says how a Server spreads accepted connections over its loops.
type LoadBalancing int

const (
	// RoundRobin accepts on one loop and hands connections to the loops in turn. It is the
	// default: it spreads even a handful of connections evenly.
	RoundRobin LoadBalancing = iota
	// LeastConnections accepts on one loop and hands each connection to the loop with the
	// fewest open connections, which evens out long-lived connections of uneven lifetime.
	LeastConnections
	// PerLoopListeners opens one listening socket per loop with SO_REUSEPORT, and the kernel spreads
	// connections by a hash of their addresses. No loop hands work to another, which scales
	// accept-heavy loads best; the spread is uneven for few connections. Unix sockets have no
	// SO_REUSEPORT and fall back to RoundRobin.
	PerLoopListeners
)

// String returns the policy's name.
func (b LoadBalancing) String() string {
	switch b {
	case RoundRobin:
		return "round-robin"
	case LeastConnections:
		return "least-connections"
	case PerLoopListeners:
		return "per-loop-listeners"
	}
	return fmt.Sprintf("LoadBalancing(%d)", int(b))
}

// Option configures a Server; pass options to NewServer. An option given an out-of-range value
// makes NewServer return an error wrapping ErrInvalidOption.
type Option func(*options)

type options struct {
	loops       int
	poller      string
	reusePort   bool
	reuseAddr   bool
	noDelay     bool
	keepAlive   time.Duration
	rcvBuf      int
	sndBuf      int
	backlog     int
	readBufSize int
	high, low   int
	maxConns    int
	shed        bool
	admitter    Admitter
	logger      *zap.Logger
	balancing   LoadBalancing
	broadcast   bool
	idleTimeout time.Duration
	tlsTimeout  time.Duration
	tlsLimit    int
	tlsOnLoop   bool
	errs        []error
}

// Defaults of the options.
const (
	DefaultReadBufferSize = 64 << 10 // per loop, shared by all its connections
	DefaultHighWater      = 1 << 20  // pending output above which reading pauses
)

func defaultOptions() options {
	return options{
		loops:       runtime.GOMAXPROCS(0),
		poller:      "auto",
		reuseAddr:   true,
		noDelay:     true,
		readBufSize: DefaultReadBufferSize,
		high:        DefaultHighWater,
		low:         DefaultHighWater / 2,
		logger:      zap.NewNop(),
		balancing:   RoundRobin,
		tlsTimeout:  DefaultTLSHandshakeTimeout,
		tlsLimit:    DefaultTLSHandshakeLimit(),
		tlsOnLoop:   true,
	}
}

func (o *options) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

func (o *options) err() error { return errors.Join(o.errs...) }

// WithLoops sets the number of event loops, each on its own goroutine locked to an OS thread.
// n = 0 means runtime.GOMAXPROCS(0), the default; n must be between 0 and 1024.
func WithLoops(n int) Option {
	return func(o *options) {
		switch {
		case n < 0 || n > 1024:
			o.fail("WithLoops(%d): want 0..1024", n)
		case n == 0:
			o.loops = runtime.GOMAXPROCS(0)
		default:
			o.loops = n
		}
	}
}

// WithPoller names the loops' I/O backend: a readiness poller of package poller ("epoll",
// "uring-poll", "poll", "select", "kqueue"), "uring" for the io_uring completion mode on
// Linux (the kernel accepts, receives and sends; one io_uring_enter per loop iteration;
// docs/IO_URING.md), or "auto", the default, which honours the REACTOR_POLLER environment
// variable and otherwise takes Pollers()[0] (epoll on Linux). An unknown or uncompiled name
// makes NewServer fail with an error wrapping poller.ErrUnknownBackend; a backend this kernel
// refuses makes Start fail with one wrapping poller.ErrUnsupported (CheckPoller asks first).
func WithPoller(name string) Option {
	return func(o *options) { o.poller = name }
}

// WithReusePort sets SO_REUSEPORT on listening sockets so other processes (a new version of
// the daemon during a restart) can bind the same address. WithLoadBalancing(PerLoopListeners) sets it
// regardless. Default off.
func WithReusePort(on bool) Option {
	return func(o *options) { o.reusePort = on }
}

// WithReuseAddr sets SO_REUSEADDR on TCP and UDP listening sockets, so a restarted server can
// bind while old connections linger in TIME_WAIT. Default on.
func WithReuseAddr(on bool) Option {
	return func(o *options) { o.reuseAddr = on }
}

// WithTCPNoDelay sets TCP_NODELAY on accepted TCP connections. The reactor already coalesces
// output into one write per connection per loop iteration, so Nagle's algorithm only adds
// latency. Default on.
func WithTCPNoDelay(on bool) Option {
	return func(o *options) { o.noDelay = on }
}

// WithTCPKeepAlive turns on TCP keep-alive probes for accepted connections after d of
// silence, repeated every d (rounded up to whole seconds). 0, the default, leaves them off;
// d must not be negative.
func WithTCPKeepAlive(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.fail("WithTCPKeepAlive(%v): negative", d)
			return
		}
		o.keepAlive = d
	}
}

// WithSocketBuffers sets SO_RCVBUF and SO_SNDBUF on listening sockets (accepted connections
// inherit them). 0 keeps the kernel's default and its auto-tuning; negative is an error.
func WithSocketBuffers(rcv, snd int) Option {
	return func(o *options) {
		if rcv < 0 || snd < 0 {
			o.fail("WithSocketBuffers(%d, %d): negative", rcv, snd)
			return
		}
		o.rcvBuf, o.sndBuf = rcv, snd
	}
}

// WithBacklog sets the listen(2) backlog. 0, the default, means SOMAXCONN (the kernel caps
// it at net.core.somaxconn anyway).
func WithBacklog(n int) Option {
	return func(o *options) {
		if n < 0 {
			o.fail("WithBacklog(%d): negative", n)
			return
		}
		o.backlog = n
	}
}

// WithReadBufferSize sets the size of each loop's shared read buffer, which is also the most
// one read(2) takes from a connection. Default 64 KiB; allowed 512 B to 64 MiB.
func WithReadBufferSize(n int) Option {
	return func(o *options) {
		if n < 512 || n > 64<<20 {
			o.fail("WithReadBufferSize(%d): want 512..64MiB", n)
			return
		}
		o.readBufSize = n
	}
}

// WithWatermarks sets a connection's output high-water mark, above which the loop stops
// reading it, and low-water mark, at or below which reading resumes (and OnWritable fires).
// low = 0 means high/2. Default 1 MiB and 512 KiB. high must be positive and low < high.
func WithWatermarks(high, low int) Option {
	return func(o *options) {
		if low == 0 {
			low = high / 2
		}
		if high <= 0 || low < 0 || low >= high {
			o.fail("WithWatermarks(%d, %d): want 0 <= low < high", high, low)
			return
		}
		o.high, o.low = high, low
	}
}

// WithMaxConns caps the number of open connections of the server, dialed and adopted ones
// included (they hold descriptors too; Dial itself is not refused). At the cap the server stops
// accepting (pending connections wait in the kernel's backlog; in the io_uring completion mode
// too, where the kernel is only ever allowed to accept what the cap has room for) and retries
// every few milliseconds. 0, the default, means no cap; negative is an error.
func WithMaxConns(n int) Option {
	return func(o *options) {
		if n < 0 {
			o.fail("WithMaxConns(%d): negative", n)
			return
		}
		o.maxConns = n
	}
}

// WithLogger sets the logger for rare events (accept paused and resumed, loop failures). The
// hot path never logs. Default zap.NewNop(); nil is an error.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.fail("WithLogger(nil)")
			return
		}
		o.logger = l
	}
}

// WithLoadBalancing chooses how connections are spread over loops: RoundRobin (default),
// LeastConnections or PerLoopListeners. It also applies to ListenPacket: with PerLoopListeners each loop
// gets its own UDP socket, otherwise one socket lives on the first loop.
func WithLoadBalancing(b LoadBalancing) Option {
	return func(o *options) {
		if b < RoundRobin || b > PerLoopListeners {
			o.fail("WithLoadBalancing(%d): unknown policy", int(b))
			return
		}
		o.balancing = b
	}
}

// WithBroadcast sets SO_BROADCAST on UDP sockets opened by ListenPacket; without it the
// kernel refuses to send to a broadcast address with EACCES. Default off.
func WithBroadcast(on bool) Option {
	return func(o *options) { o.broadcast = on }
}

// WithIdleTimeout sets the default idle timeout of every accepted connection (see
// Conn.SetIdleTimeout): a connection that is not busy and makes no progress for d is closed.
// A busy connection (held, paused, or kept open after EOF; see the package doc) is never
// closed by it. 0, the default, means none; negative is an error.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.fail("WithIdleTimeout(%v): negative", d)
			return
		}
		o.idleTimeout = d
	}
}
