package reactor

import "sync/atomic"

// Stats is a snapshot of a server's counters, read with atomics: Server.Stats may be called
// from any goroutine. Loop counters are published once per loop iteration, so they may lag by
// one iteration.
type Stats struct {
	ConnsOpen     int64  // connections open now (accepted, dialed or adopted; not yet closed)
	ConnsAccepted uint64 // accepted connections registered with a loop since Start
	ConnsClosed   uint64 // connections closed since Start
	BytesIn       uint64 // bytes read from connections
	BytesOut      uint64 // bytes written to connections (write and sendfile)
	AcceptPaused  uint64 // times accepting paused for EMFILE/ENFILE/ENOBUFS or WithMaxConns
	ConnsDialed   uint64 // connections established by Dial
	ConnsAdopted  uint64 // connections registered by Adopt or AdoptFd
	DialsFailed   uint64 // dials that ended before being established (error, timeout, Close)
	ConnsShed     uint64 // connections closed to admit new ones (WithShedding)
	ConnsRefused  uint64 // connections closed at accept because the Admitter refused them (WithAdmitter)

	// TLS listeners (WithTLS). Handshake outcomes are counters (connections, since Start);
	// the pool's state is a gauge.
	TLSHandshakes        uint64 // handshakes completed (OnOpen was called)
	TLSHandshakeErrors   uint64 // refused: not TLS, or crypto/tls failed the handshake
	TLSHandshakeTimeouts uint64 // not completed within WithTLSHandshakeTimeout
	TLSHandshakesAborted uint64 // the peer left, the socket failed or the server stopped first
	TLSHandshakesActive  int64  // handshakes in progress now, each holding a goroutine
	TLSHandshakesQueued  int64  // complete ClientHellos waiting for a slot now
	TLSHandshakeWorkers  int64  // pool goroutines now (WithTLSHandshakeOnLoop(false))

	Loops []LoopStats
}

// LoopStats are one loop's counters. Events/Waits is the mean number of ready fds per Wait.
type LoopStats struct {
	Index         int
	ConnsOpen     int64  // connections open on this loop
	Iterations    uint64 // loop iterations
	Waits         uint64 // Poller.Wait calls
	Events        uint64 // ready fds reported by Wait
	Wakeups       uint64 // Wake calls made by Post/AsyncWrite/Close to a sleeping loop
	Timers        int64  // timers pending now (including connection timeouts)
	TimersFired   uint64 // timers run (including connection timeouts checked)
	ConnsAccepted uint64 // connections handed to this loop
	ConnsDialed   uint64 // connections established by Dial on this loop
	ConnsAdopted  uint64 // connections registered by Adopt or AdoptFd on this loop
	DialsFailed   uint64 // dials on this loop that ended before being established
	ConnsClosed   uint64 // connections of this loop closed (accepted, dialed and adopted)
	BytesIn       uint64 // bytes read from sockets (ciphertext on TLS connections)
	BytesOut      uint64 // bytes written to sockets (ciphertext on TLS connections)

	TLSHandshakes        uint64 // as in Stats, for this loop's connections
	TLSHandshakeErrors   uint64
	TLSHandshakeTimeouts uint64
	TLSHandshakesAborted uint64
}

// loopCounters are the loop's own plain counters, touched only by the loop goroutine.
type loopCounters struct {
	iterations, waits, events, timersFired uint64
	accepted, closed, bytesIn, bytesOut    uint64
	dialed, adopted, dialFailed            uint64
	tlsDone, tlsFailed, tlsTimeout         uint64
	tlsAborted                             uint64
}

// loopPublished mirrors loopCounters for other goroutines; the loop stores it once per
// iteration, so the hot path pays no atomic read-modify-write per event.
type loopPublished struct {
	iterations, waits, events, timersFired atomic.Uint64
	accepted, closed, bytesIn, bytesOut    atomic.Uint64
	dialed, adopted, dialFailed            atomic.Uint64
	tlsDone, tlsFailed, tlsTimeout         atomic.Uint64
	tlsAborted                             atomic.Uint64
	wakeups                                atomic.Uint64
	timers                                 atomic.Int64
}

func (l *Loop) publish() {
	p, s := &l.pub, &l.st
	p.iterations.Store(s.iterations)
	p.waits.Store(s.waits)
	p.events.Store(s.events)
	p.timersFired.Store(s.timersFired)
	p.accepted.Store(s.accepted)
	p.closed.Store(s.closed)
	p.bytesIn.Store(s.bytesIn)
	p.bytesOut.Store(s.bytesOut)
	p.dialed.Store(s.dialed)
	p.adopted.Store(s.adopted)
	p.dialFailed.Store(s.dialFailed)
	p.tlsDone.Store(s.tlsDone)
	p.tlsFailed.Store(s.tlsFailed)
	p.tlsTimeout.Store(s.tlsTimeout)
	p.tlsAborted.Store(s.tlsAborted)
	p.timers.Store(int64(l.timers.Len()))
}

// Stats returns the loop's counters. Any goroutine.
func (l *Loop) Stats() LoopStats {
	p := &l.pub
	return LoopStats{
		Index:         l.idx,
		ConnsOpen:     l.openConns.Load(),
		Iterations:    p.iterations.Load(),
		Waits:         p.waits.Load(),
		Events:        p.events.Load(),
		Wakeups:       p.wakeups.Load(),
		Timers:        p.timers.Load(),
		TimersFired:   p.timersFired.Load(),
		ConnsAccepted: p.accepted.Load(),
		ConnsDialed:   p.dialed.Load(),
		ConnsAdopted:  p.adopted.Load(),
		DialsFailed:   p.dialFailed.Load(),
		ConnsClosed:   p.closed.Load(),
		BytesIn:       p.bytesIn.Load(),
		BytesOut:      p.bytesOut.Load(),

		TLSHandshakes:        p.tlsDone.Load(),
		TLSHandshakeErrors:   p.tlsFailed.Load(),
		TLSHandshakeTimeouts: p.tlsTimeout.Load(),
		TLSHandshakesAborted: p.tlsAborted.Load(),
	}
}
