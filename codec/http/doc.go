// Package http is reactord's HTTP/1.1 server codec: a strict, incremental, zero-allocation
// request parser (RFC 9112 message syntax, RFC 9110 semantics), a chunked body decoder, a
// response serializer, and the Server that runs them on package reactor's event loops, with a
// native zero-allocation handler API and an adapter for net/http handlers.
//
// # Layer
//
// The package sits above package reactor and knows nothing of flags, metrics or files (the
// daemon wires those in through options such as WithObserver and ResponseWriter.SendFile).
// The protocol core (Parser, ChunkedDecoder, ResponseWriter) does not depend on the reactor:
// Parser.Parse consumes from an in []byte that may end anywhere and reports how many bytes one
// complete request used, which is the reactor's OnData contract (unconsumed bytes are kept and
// handed back with the next read appended). Server is the glue: one codec state per
// connection, one Date cache, response writer and scratch buffer per loop.
//
// One OnData call parses every complete request the input holds, in order. For each it calls
// the handler and appends the response to the loop's scratch buffer; the responses of the call
// go to the connection with one Conn.Write, and leave with one write(2) at the end of the loop
// iteration. A partial request stays with the connection. Before each request the codec checks
// Conn.OutputFull and stops consuming above the reactor's high-water mark, so a client that
// pipelines without reading holds at most one read of input and the watermark of output.
// Malformed input gets the right status (AppendError) and the connection closes after it;
// after a response that closes the connection nothing more is read.
//
// # Handlers
//
// Native (Handler, HandlerFunc): Handle(w *ResponseWriter, r *Request) runs on the loop
// goroutine. It must not block; r's views and w are valid only during the call; 0 allocations
// per request end to end (TestServerZeroAllocPerRequest). SendFile queues a file after the head.
// A native handler that implements BodyStreamer consumes large request bodies piece by piece
// as they arrive instead of having them buffered whole.
//
// net/http (Adapt): any http.Handler runs unchanged on worker goroutines. The loop parses the
// request once and builds the *http.Request from that parse (no second parse on the worker),
// a worker runs the handler, and the response (serialized on the worker) is posted back to
// the loop, which writes responses in request order. Workers start on demand up to
// WithWorkers and retire when idle; WithMaxQueue sheds with 503. Large and chunked request
// bodies stream to r.Body with backpressure; http.Hijacker, http.ResponseController, 1xx and
// trailers work. See Adapter for the exact semantics and the differences from net/http.
//
// Protocol switch: a native handler calls ResponseWriter.Upgrade to answer 101 and hand the
// connection to another reactor.Handler (WebSocket, say); the adapter's Hijack is the same
// hand-over to a loop-served net.Conn.
//
// # Structure
//
// The connection layer is three parts: framing (conn.go: the reactor callbacks, parsing,
// rejections, 100-continue, backpressure, upgrades), deadlines (deadline.go: one deadline per
// connection, derived from the phase of the request), and a dispatcher (dispatch.go) — inline
// for a native Handler, the worker pool for the adapter — behind one small interface. The
// ResponseWriter is changed only by its own methods. Per-loop state (Date cache, scratch
// output, idle parsers, counters) lives in a table owned by the Server and indexed by
// Loop.Index(), so the loop's Context slot is left to embedders.
//
// # Client
//
// The same loops can call out. Client sends requests to one upstream (TCP or Unix) over
// keep-alive connections pooled per loop, dialed with reactor.Loop.Dial, and parses the
// answers with ResponseParser: a strict, incremental, zero-allocation response parser on the
// request parser's rules, which streams bodies instead of buffering them. Client.Do calls back
// once with a complete response; Client.Send streams it to a ResponseHandler with
// backpressure (Exchange.Pause, Resume) and, with ClientConfig.MaxPipeline, Exchange.SendNext
// pipelines a batch on one connection. Idempotent requests whose reused connection the
// upstream closed unanswered are retried once; GatewayStatus maps a failed exchange to 502 or
// 504. Sending and its callbacks run on the loop goroutine: no lock, no thread hand-off.
//
// # Threading
//
// Parser, ChunkedDecoder, ResponseWriter and DateCache are single-goroutine types owned by a
// connection's (or a loop's) goroutine. Server methods are safe from any goroutine (Shutdown not
// from a loop goroutine nor from one of the server's adapter handlers; Close also from a
// handler). Observer callbacks run on loop goroutines. Package-level functions and
// values are safe for concurrent use.
//
// # Buffer ownership
//
// A *Request and every []byte it returns (method, target, path, query, headers, body, trailers)
// alias the connection's input buffer or the parser's body buffer. They are valid only during
// the handler call — until the next Parse, Reset or Release on the same Parser. Copy what must
// outlive the call. The string helpers copy and may allocate; the []byte accessors never do.
// The same holds for RequestInfo given to an Observer.
//
// # Server options and defaults
//
//	WithLimits                 parser limits: DefaultLimits (8 KiB request-line, 64 KiB header
//	                           section, 100 fields, 8 MiB body, bare LF refused)
//	WithReadHeaderTimeout      10 s: first byte to end of head (408 + close); also closes a new
//	                           connection that sends nothing (silently)
//	WithReadTimeout            off: first byte to end of body (408 + close); when off, a body
//	                           stalled for the idle timeout gets the 408
//	WithIdleTimeout            60 s: wait for the next request (silent close)
//	WithWriteTimeout           off: output left unsent that long closes the connection
//	WithMaxRequestsPerConn     unlimited: the n-th response says "Connection: close"
//	WithServerName             none: no Server header
//	WithObserver               none: called after every response (access log, metrics)
//	WithLogger                 zap.NewNop(): recovered panics, dropped adapter headers
//	WithReactorOptions         reactor defaults (GOMAXPROCS loops, epoll, 1 MiB high water)
//	WithWorkers                max(1024, 256×GOMAXPROCS): cap on adapter workers (started on
//	                           demand, retired when idle)
//	WithMaxQueue               0 (no bound): adapter requests waiting for a worker before 503
//	WithMaxPipeline            16 adapter requests in flight per connection
//	WithBaseContext            context.Background(): parent of adapter request contexts
//	WithErrorBody              none: the codec's own error responses have a text/plain body
//
// Timeouts run on one lazily re-armed loop timer per connection: per request the codec stores
// loop-clock stamps, and the timer heap is touched only when a deadline moves earlier.
//
// # Running, routing, testing
//
// Server.Run(ctx, drain) serves until ctx is done, then shuts down within drain. Package
// codec/http/router routes native handlers without allocating; package codec/http/rhttptest
// runs them in tests through this package's parser and ResponseWriter, without a socket, and
// fails a test whose handler ignored a ResponseWriter error (ResponseWriter.Err).
//
// # Strictness
//
// Every malformed request gets a *ParseError whose Status is the response to send (400, 413,
// 414, 417, 431, 501, 505; 408 for timeouts) and the connection is closed afterwards. Decisions
// where RFC 9112 leaves room, all taken on the strict side and documented on the Err* values:
// single SP between request-line parts; bare LF rejected unless Limits.AllowBareLF; empty lines
// before the request-line ignored (RFC 9112 §2.2); duplicate Content-Length rejected even when
// identical; a Host header required exactly once on HTTP/1.1 and validated as uri-host
// [":" port]; raw bytes outside the URI character set (including >= 0x80, "#", `"`, "{", "|")
// rejected in the request-target; HTTP/1.x with x > 1 handled as HTTP/1.1 (RFC 9110 §6.2), other
// majors 505; any method token accepted (the application answers 405/501).
// "Expect: 100-continue" is answered with 100 as soon as the head is complete and the body has
// not arrived; other expectations get 417.
package http
