package http

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// Defaults of the server options.
const (
	// DefaultReadHeaderTimeout bounds the time from the first byte of a request (or from
	// accepting the connection) to the end of its header section; then 408 and close.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds the wait for the next request on a keep-alive connection, and
	// a body that makes no progress when ReadTimeout is off.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxPipeline bounds the requests of one connection in flight on the adapter's
	// worker pool at once.
	DefaultMaxPipeline = 16
)

// DefaultWorkers is the adapter's default cap on worker goroutines: 256×GOMAXPROCS, at least
// 1024. Workers start on demand and retire after a few idle seconds, so the cap costs nothing
// until handlers block; it is generous so that a slow route holding many workers does not make
// every other route queue (net/http runs a goroutine per connection and has no such cap).
func DefaultWorkers() int { return max(1024, 256*runtime.GOMAXPROCS(0)) }

// Option configures a Server; pass options to NewServer. A bad value makes NewServer return an
// error wrapping ErrInvalidOption.
type Option func(*config)

type config struct {
	limits            Limits
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	writeTimeout      time.Duration
	maxRequests       int
	serverName        string
	observer          Observer
	logger            *zap.Logger
	reactorOpts       []reactor.Option
	workers           int
	maxQueue          int
	maxPipeline       int
	baseCtx           context.Context
	errorBody         ErrorBody
	errs              []error
}

// ErrInvalidOption is returned (wrapped) by NewServer for an option value out of range. It is
// the same value as reactor.ErrInvalidOption, so one errors.Is check covers the options of both
// layers (WithReactorOptions passes reactor options through).
var ErrInvalidOption = reactor.ErrInvalidOption

func defaultConfig() config {
	return config{
		readHeaderTimeout: DefaultReadHeaderTimeout,
		idleTimeout:       DefaultIdleTimeout,
		logger:            zap.NewNop(),
		workers:           DefaultWorkers(),
		maxPipeline:       DefaultMaxPipeline,
		baseCtx:           context.Background(),
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

func (c *config) duration(name string, d time.Duration, dst *time.Duration) {
	if d < 0 {
		c.fail("%s(%v): negative", name, d)
		return
	}
	*dst = d
}

// WithLimits sets the parser limits (zero fields take the defaults, see Limits). Limits that
// fail Limits.Validate are an error.
func WithLimits(l Limits) Option {
	return func(c *config) {
		if err := l.Validate(); err != nil {
			c.fail("WithLimits: %v", err)
			return
		}
		c.limits = l
	}
}

// WithReadHeaderTimeout bounds the time from the first byte of a request to the end of its
// header section (slowloris protection): when it passes, the client gets 408 and the
// connection closes. A new connection that sends nothing for d is closed silently. Default
// DefaultReadHeaderTimeout; 0 disables it.
func WithReadHeaderTimeout(d time.Duration) Option {
	return func(c *config) { c.duration("WithReadHeaderTimeout", d, &c.readHeaderTimeout) }
}

// WithReadTimeout bounds the time from the first byte of a request to its last body byte:
// when it passes, 408 and close. Default 0: off, and then a body that makes no progress for
// the idle timeout gets the 408 instead.
func WithReadTimeout(d time.Duration) Option {
	return func(c *config) { c.duration("WithReadTimeout", d, &c.readTimeout) }
}

// WithIdleTimeout closes a keep-alive connection silently when no byte of a next request
// arrives for d after the last response. Default DefaultIdleTimeout; 0 disables it.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.duration("WithIdleTimeout", d, &c.idleTimeout) }
}

// WithWriteTimeout closes a connection (without a response) when its output has stayed
// unsent for d: a client that stops reading its responses. It is checked by the connection's
// timer, so the close may come up to one period late. Default 0: off (reading from such a
// client is still paused at the reactor's high-water mark, so its memory stays bounded).
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) { c.duration("WithWriteTimeout", d, &c.writeTimeout) }
}

// WithMaxRequestsPerConn makes the n-th response of a connection carry "Connection: close",
// after which the connection closes. 0, the default, means no limit; negative is an error.
func WithMaxRequestsPerConn(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.fail("WithMaxRequestsPerConn(%d): negative", n)
			return
		}
		c.maxRequests = n
	}
}

// WithServerName sends "Server: name" on every response. Default: no Server header. A name
// with control characters is an error.
func WithServerName(name string) Option {
	return func(c *config) {
		if !validValue(name) {
			c.fail("WithServerName(%q): invalid header value", name)
			return
		}
		c.serverName = name
	}
}

// WithObserver calls fn on the loop goroutine after every response (see Observer and
// RequestInfo). Default none; nil is an error.
func WithObserver(fn Observer) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("WithObserver(nil)")
			return
		}
		c.observer = fn
	}
}

// WithLogger sets the logger for rare events: recovered handler panics, invalid headers
// dropped by the adapter. It is also given to the reactor (a WithReactorOptions logger wins).
// The request path never logs. Default zap.NewNop(); nil is an error.
func WithLogger(l *zap.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger(nil)")
			return
		}
		c.logger = l
	}
}

// WithReactorOptions passes options to the underlying reactor.Server (loops, poller, load
// balancing, watermarks, max connections, ...). Nil options are an error (reported by
// reactor.NewServer).
func WithReactorOptions(opts ...reactor.Option) Option {
	return func(c *config) { c.reactorOpts = append(c.reactorOpts, opts...) }
}

// WithWorkers caps the worker goroutines that run net/http handlers (Adapt): at most n requests
// are handled at once; more wait in a queue (see WithMaxQueue). Workers start on demand and
// retire when idle. Default DefaultWorkers(); n must be 1..1<<20. Ignored for native handlers.
func WithWorkers(n int) Option {
	return func(c *config) {
		if n < 1 || n > 1<<20 {
			c.fail("WithWorkers(%d): want 1..1048576", n)
			return
		}
		c.workers = n
	}
}

// WithMaxQueue bounds the adapter work waiting for a worker when WithWorkers are all busy. The
// requests of one connection that arrive in one read are dispatched together and wait as one
// queue entry; an entry that would make the queue longer than n is refused at once: its first
// request is answered 503 Service Unavailable and the connection closed after it, instead of
// waiting behind the others. (When a handler of such an entry blocks, the entry's remaining
// requests queue again so they need not wait for it; with the queue full they are not refused
// but run after it, on its worker.)
// Shedding keeps latency bounded under overload; Stats.Shed counts it. Default 0: no bound
// (the queue is then bounded only by connections × WithMaxPipeline). n must be 0..1<<24.
func WithMaxQueue(n int) Option {
	return func(c *config) {
		if n < 0 || n > 1<<24 {
			c.fail("WithMaxQueue(%d): want 0..16777216", n)
			return
		}
		c.maxQueue = n
	}
}

// WithMaxPipeline bounds how many requests of one connection may be in flight on the worker
// pool at once (pipelined safe requests run in parallel; responses still leave in order).
// Above it the connection stops being read until one completes. Default DefaultMaxPipeline;
// n must be 1..1024.
func WithMaxPipeline(n int) Option {
	return func(c *config) {
		if n < 1 || n > 1024 {
			c.fail("WithMaxPipeline(%d): want 1..1024", n)
			return
		}
		c.maxPipeline = n
	}
}

// WithBaseContext sets the parent of every adapter request's context (values and
// cancellation reach the handlers). Default context.Background(); nil is an error.
func WithBaseContext(ctx context.Context) Option {
	return func(c *config) {
		if ctx == nil {
			c.fail("WithBaseContext(nil)")
			return
		}
		c.baseCtx = ctx
	}
}
