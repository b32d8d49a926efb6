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
//
// net/http (Adapt): any http.Handler runs unchanged on a bounded worker pool; the loop copies
// the request's bytes, a worker parses them again, builds the *http.Request and runs the
// handler, and the response (serialized on the worker) is posted back to the loop, which writes
// responses in request order. See Adapter for the exact semantics.
//
// # Threading
//
// Parser, ChunkedDecoder, ResponseWriter and DateCache are single-goroutine types owned by a
// connection's (or a loop's) goroutine. Server methods are safe from any goroutine (Shutdown not
// from a loop goroutine). Observer callbacks run on loop goroutines. Package-level functions and
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
//	WithWorkers                max(16, 8×GOMAXPROCS) adapter workers
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
