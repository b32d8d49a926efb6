// Package reactor is reactord's event-loop layer: it turns a poller.Poller into a server of
// stream connections (TCP, Unix) and datagram sockets (UDP), with timers, output buffering and
// backpressure. It knows nothing of HTTP; codecs sit on top of its Handler interface.
//
// # Loops
//
// A Server runs N Loops (default GOMAXPROCS). Each Loop is one goroutine locked to its OS
// thread, owning one Poller. One iteration, in loop.go, reads top-down:
//
//  1. Wait for readiness, at most until the earliest timer is due;
//  2. dispatch the ready fds: accept, read and call OnData, or flush on Writable;
//  3. run expired timers (AfterFunc, Every, connection timeouts and deadlines);
//  4. run tasks posted from other goroutines (Post, AsyncWrite, Close);
//  5. flush every connection written to during the iteration, one write(2) each.
//
// Connections are spread over loops by an acceptor loop (RoundRobin, LeastConnections) or by
// the kernel (ReusePort: one SO_REUSEPORT listener per loop); see WithLoadBalancing.
//
// # Outbound and adopted connections
//
// A loop also opens connections: Loop.Dial (or Server.Dial, which picks the loop with the
// fewest connections) connects to a TCP or Unix address without blocking — the name lookup,
// if any, runs on a goroutine of its own; connect(2) completes on the poller — and serves the
// connection with the Handler given to Dial, not the Server's: OnOpen once connected, OnClose
// with the cause if it could not be (ECONNREFUSED, a *net.DNSError, ErrDialTimeout). Adopt and
// AdoptFd move an existing connected socket (a *net.TCPConn, a *net.UnixConn, a descriptor)
// into a loop the same way. Such connections are Conns like accepted ones — watermarks,
// timeouts, half-close, Stats (ConnsDialed, ConnsAdopted, DialsFailed) and Shutdown apply —
// and they count toward WithMaxConns. So one loop can serve clients and talk to the servers
// behind them without a thread hand-off: see codec/http's Client.
//
// # Threading rules
//
// Everything about a connection happens on its loop's goroutine: Handler callbacks, timers,
// posted functions. Handlers therefore need no locks, and must not block. Conn and Loop methods
// are for the loop goroutine unless their documentation says otherwise. From other goroutines
// there are exactly three doors, all waking the loop through the poller's Wake when it sleeps:
// Loop.Post, Conn.AsyncWrite (with AsyncWriteContext, its form paced by the watermarks) and
// Conn.Close. Server methods, Loop.Stats, Loop.Index and PacketConn.WriteTo are safe anywhere.
// A loop never waits for a loop (of its own Server or another): called on a loop goroutine,
// Server.Close and Listen hand their work to the loops and return, and Shutdown and Serve,
// which could only wait, return ErrCalledOnLoop.
//
// # Buffers and ownership
//
// Each loop reads into one shared buffer (WithReadBufferSize, 64 KiB). OnData receives a slice
// that is valid only during the call: the connection's unconsumed tail followed by the new
// bytes. Only what OnData does not consume is copied into storage of the connection's own,
// and that storage goes back to a per-loop pool once consumed. Write copies its argument into
// output storage borrowed from the same pool, returned once written. An idle connection thus
// holds no buffer, only its descriptor, its state and (if set) a timeout timer.
//
// Output written during an iteration leaves in one write(2) per connection at its end. Only
// when the kernel answers EAGAIN (or takes part of it) does the loop ask the poller for
// Writable, and it drops that interest once the output has drained: left on, it would make
// every Wait return at once. Above the high-water mark (WithWatermarks, 1 MiB) the loop stops
// reading the connection; at or below the low-water mark it resumes, hands the kept input back
// to OnData and calls OnWritable. Handlers that answer requests should check OutputFull
// between requests, so that a client pipelining without reading cannot grow server memory.
// Goroutines writing with AsyncWrite are not paced (it never waits); AsyncWriteContext waits
// while the connection's output is above the high-water mark until it has drained to the
// low-water mark, which bounds a producer to what the client actually reads.
//
// # Busy and idle
//
// One rule says whether a connection is busy, and the idle timeout, the read timeout,
// Server.Shutdown and the handling of a peer's EOF all follow it. A connection is busy while
// its handler owes it work that does not wait on the peer:
//
//   - the handler holds it (Conn.Hold, until the matching Release): a request handed to another
//     goroutine, whose answer will come back through AsyncWrite or Post;
//   - the handler paused reading (PauseRead, until ResumeRead);
//   - OnReadEOF kept it open after the peer's EOF (until the handler closes it).
//
// While a connection is busy its idle and read timeouts do not run; they count afresh from the
// moment it stops being busy. Deadlines set with SetDeadline run regardless: they are the
// handler's own. Shutdown closes a connection once it is idle: not busy, no kept input, no
// pending output; it waits for the others. A peer's EOF closes a busy connection only once it
// stops being busy. Waiting on the peer is not busy: a connection waiting for input, or for
// the peer to read output above the high-water mark, is subject to its timeouts, which is what
// bounds the time a silent or non-reading client can hold it.
//
// # Half-close
//
// When a read returns end-of-file the peer has shut its writing side; nothing more is read.
// Input the handler kept (pipelined requests it had not taken yet) is still handed back first:
// kept input always goes back to OnData before the connection reads again, so it is never
// overtaken by new bytes or by the EOF. After the EOF it is handed back while OnData makes
// progress on it, or once the connection stops being busy; a rest OnData takes nothing of
// while not busy is an incomplete message for good and is dropped. Only then is the EOF acted
// on: the connection closes once it is not busy and its output is flushed, and OnClose gets
// io.EOF. So a handler whose answers are computed on other goroutines holds the connection
// (Hold) until they are written; it can also implement ReadEOFHandler, to learn of the EOF
// (to cancel work nobody will read, say) or to keep the connection open until it calls Close.
//
// # Errors and the kernel
//
// Errors are exported values matched with errors.Is (ErrServerClosed, ErrIdleTimeout, ...);
// kernel errors come wrapped in os.SyscallError. Nothing read from the network panics the
// process. EINTR is retried, EAGAIN ends a read or write, and EMFILE/ENFILE on accept pause
// accepting for a backoff instead of spinning on the still-readable listener or exiting.
package reactor
