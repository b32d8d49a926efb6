package http

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"sync"
	"time"

	"github.com/reactord/reactord/reactor"
)

// Hijack for the net/http adapter. The hijacked connection stays on its loop: Hijack is the
// same protocol hand-over as ResponseWriter.Upgrade (upgrade.go), to a reactor.Handler that
// serves a net.Conn (hijackConn) to the handler's goroutines. Reads take bytes the loop has
// received (reading pauses while hijackBufMax of them wait), writes are posted to the loop and
// paced by the connection's high-water mark, Close closes after pending output, and deadlines
// are enforced on the caller's side.

// ErrHijackPipelined is returned by Hijack when later pipelined requests of the connection were
// already read and dispatched: their bytes cannot be handed to the hijacker. Requests that ask
// for a protocol upgrade (an Upgrade header), CONNECT and unsafe methods run alone, so this
// never happens to them.
var ErrHijackPipelined = errors.New("http: Hijack of a request with pipelined requests after it in flight")

// hijackBufMax is the received data a hijacked connection buffers before reading pauses.
const hijackBufMax = 256 << 10

type hijackReq struct {
	head  []byte // output of the response begun before Hijack (a 101 head), sent first
	hc    *hijackConn
	reply chan hijackReply
}

type hijackReply struct{ err error }

// Hijack takes the connection over (http.Hijacker). The returned bufio.ReadWriter has nothing
// buffered: every byte the client sent after the request is read from the net.Conn. If the
// handler called WriteHeader(101) (or flushed a response) first, that output is sent before
// Hijack returns. The handler's http.ResponseWriter must not be used afterwards. Errors:
// http.ErrNotSupported in Adapter.Handle, ErrHijacked for a second call, ErrHijackPipelined,
// ErrClientGone, ErrUpgradeHTTP10 after WriteHeader(101) on an HTTP/1.0 request.
func (rw *adapterRW) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	j := rw.j
	switch {
	case j == nil:
		return nil, nil, nethttp.ErrNotSupported
	case rw.hijacked:
		return nil, nil, ErrHijacked
	case rw.err != nil:
		return nil, nil, rw.err
	case j.gone.Load():
		return nil, nil, ErrClientGone
	}
	w := rw.w
	w.SetFlushHook(nil)
	var head []byte
	switch {
	case rw.wroteHeader && rw.status == StatusSwitchingProtocols:
		rw.copyHeader(true)
		if err := w.commitSwitching(false); err != nil {
			w.SetFlushHook(j.emitFn)
			return nil, nil, err
		}
		head = append(head, w.TakeOutput()...)
	case w.Committed():
		head = append(head, w.TakeOutput()...)
	}
	req := &hijackReq{head: head, hc: &hijackConn{loop: j.loop}, reply: make(chan hijackReply, 1)}
	req.hc.rnotify = make(chan struct{}, 1)
	req.hc.wack = make(chan struct{}, 1)
	if err := j.loop.Post(func() { j.onHijack(req) }); err != nil {
		return nil, nil, ErrClientGone
	}
	if rep := <-req.reply; rep.err != nil {
		w.SetFlushHook(j.emitFn)
		return nil, nil, rep.err
	}
	rw.hijacked = true
	if rw.wk != nil {
		rw.wk.pool.detach(rw.wk)
	}
	hc := req.hc
	return hc, bufio.NewReadWriter(bufio.NewReader(hc), bufio.NewWriter(hc)), nil
}

// onHijack runs on the loop: the job takes the connection once it is first in line.
func (j *job) onHijack(req *hijackReq) {
	cs := j.cs
	if j.orphan || cs == nil || cs.flags&csClosed != 0 || cs.ad == nil {
		req.reply <- hijackReply{err: ErrClientGone}
		return
	}
	ad := cs.ad
	if ad.queue[len(ad.queue)-1] != j {
		req.reply <- hijackReply{err: ErrHijackPipelined}
		return
	}
	j.hj = req
	ad.advance()
}

// completeHijack hands the connection to the hijacker: j is first and last in the queue.
func (ad *adConn) completeHijack(j *job) {
	cs := ad.cs
	ls := cs.ls
	req := j.hj
	j.hj = nil
	now := ls.nowNs()
	if len(req.head) > 0 {
		cs.write(req.head, now)
	}
	ad.queue[0] = nil
	ad.queue = ad.queue[:0]
	j.leave()
	cs.flags &^= csBarrier | csDone
	if cs.flags&csActive != 0 {
		cs.flags &^= csActive
		ls.removeActive(cs)
	}
	ad.release()
	ls.requests++
	if obs := cs.srv().cfg.observer; obs != nil {
		info := &ls.info
		*info = RequestInfo{
			Method: j.method, Path: j.path, ProtoMinor: j.minor, Status: StatusSwitchingProtocols,
			BytesIn: int64(j.bytesIn), BytesOut: int64(len(req.head)), Start: ls.timeAt(j.start),
			Duration: time.Duration(now - j.start), conn: cs.c,
		}
		obs(info)
		info.conn = nil
	}
	ls.publish()
	// From here the job belongs to its worker alone (and is dropped when the handler returns).
	hc := req.hc
	hc.local, hc.remote, hc.tls = cs.c.LocalAddr(), cs.c.RemoteAddr(), cs.c.TLS()
	eof := cs.flags&csEOF != 0
	cs.completeUpgrade(&hijackHandler{hc: hc})
	if eof {
		hc.setReadErr(io.EOF)
	}
	req.reply <- hijackReply{}
}

// hijackHandler serves a hijacked connection on its loop.
type hijackHandler struct{ hc *hijackConn }

func (h *hijackHandler) OnOpen(c *reactor.Conn) { h.hc.c = c }

func (h *hijackHandler) OnData(c *reactor.Conn, in []byte) int {
	hc := h.hc
	hc.mu.Lock()
	if hc.closed {
		hc.mu.Unlock()
		return len(in)
	}
	hc.buf = append(hc.buf, in...)
	full := len(hc.buf)-hc.r >= hijackBufMax
	if full {
		hc.paused = true
	}
	hc.mu.Unlock()
	if full {
		c.PauseRead()
	}
	hc.notifyReader()
	return len(in)
}

func (h *hijackHandler) OnReadEOF(c *reactor.Conn) bool {
	h.hc.setReadErr(io.EOF)
	return true // the hijacker may still write; it closes the connection when done
}

func (h *hijackHandler) OnWritable(c *reactor.Conn) {
	if h.hc.writeWait {
		h.hc.writeWait = false
		h.hc.ackWrite()
	}
}

func (h *hijackHandler) OnClose(c *reactor.Conn, err error) {
	hc := h.hc
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, reactor.ErrServerClosed) {
		err = io.EOF
	}
	hc.mu.Lock()
	hc.gone = true
	hc.mu.Unlock()
	hc.setReadErr(err)
	hc.ackWrite()
}

// hijackConn is the net.Conn a hijacking handler gets. Safe for concurrent use, like any
// net.Conn; the loop side runs in hijackHandler.
type hijackConn struct {
	loop          *reactor.Loop
	c             *reactor.Conn // loop goroutine only
	local, remote net.Addr
	tls           *tls.ConnectionState // nil without TLS

	mu      sync.Mutex
	buf     []byte // received, unread: buf[r:]
	r       int
	rerr    error // after buf: io.EOF, or the connection's error
	closed  bool  // Close was called
	gone    bool  // the connection closed (loop side)
	paused  bool  // reading paused at hijackBufMax
	readDL  time.Time
	writeDL time.Time
	rnotify chan struct{}

	wmu       sync.Mutex    // one Write at a time
	wack      chan struct{} // loop → writer: the bytes were taken
	writeWait bool          // loop goroutine only: the ack waits for OnWritable
}

func (hc *hijackConn) notifyReader() {
	select {
	case hc.rnotify <- struct{}{}:
	default:
	}
}

func (hc *hijackConn) ackWrite() {
	select {
	case hc.wack <- struct{}{}:
	default:
	}
}

func (hc *hijackConn) setReadErr(err error) {
	hc.mu.Lock()
	if hc.rerr == nil {
		hc.rerr = err
	}
	hc.mu.Unlock()
	hc.notifyReader()
}

// Read reads bytes the client sent (net.Conn).
func (hc *hijackConn) Read(p []byte) (int, error) {
	for {
		hc.mu.Lock()
		if hc.closed {
			hc.mu.Unlock()
			return 0, net.ErrClosed
		}
		if dl := hc.readDL; !dl.IsZero() && !time.Now().Before(dl) {
			// As with a net.TCPConn, a passed deadline fails the read even with data waiting.
			hc.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		if hc.r < len(hc.buf) {
			n := copy(p, hc.buf[hc.r:])
			hc.r += n
			if hc.r == len(hc.buf) {
				hc.buf, hc.r = hc.buf[:0], 0
			}
			resume := hc.paused && len(hc.buf)-hc.r < hijackBufMax/2
			if resume {
				hc.paused = false
			}
			hc.mu.Unlock()
			if resume {
				hc.loop.Post(func() {
					if hc.c != nil {
						hc.c.ResumeRead()
					}
				})
			}
			return n, nil
		}
		if hc.rerr != nil {
			err := hc.rerr
			hc.mu.Unlock()
			return 0, err
		}
		if len(p) == 0 {
			hc.mu.Unlock()
			return 0, nil
		}
		dl := hc.readDL
		hc.mu.Unlock()
		if !waitUntil(hc.rnotify, dl) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// waitUntil waits for a signal on ch, or until dl (zero: no deadline); false when dl passed.
func waitUntil(ch chan struct{}, dl time.Time) bool {
	if dl.IsZero() {
		<-ch
		return true
	}
	d := time.Until(dl)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// Write sends p (net.Conn). It returns once the loop has taken the bytes, waiting while the
// connection's output is above the high-water mark.
func (hc *hijackConn) Write(p []byte) (int, error) {
	hc.wmu.Lock()
	defer hc.wmu.Unlock()
	hc.mu.Lock()
	closed, gone, dl := hc.closed, hc.gone, hc.writeDL
	hc.mu.Unlock()
	switch {
	case closed:
		return 0, net.ErrClosed
	case gone:
		return 0, ErrClientGone
	case !dl.IsZero() && !time.Now().Before(dl):
		return 0, os.ErrDeadlineExceeded
	case len(p) == 0:
		return 0, nil
	}
	data := append([]byte(nil), p...)
	select { // a stale ack of a timed-out write
	case <-hc.wack:
	default:
	}
	if err := hc.loop.Post(func() { hc.onWrite(data) }); err != nil {
		return 0, ErrClientGone
	}
	if !waitUntil(hc.wack, dl) {
		return 0, os.ErrDeadlineExceeded
	}
	hc.mu.Lock()
	gone = hc.gone
	hc.mu.Unlock()
	if gone {
		return 0, ErrClientGone
	}
	return len(p), nil
}

// onWrite runs on the loop.
func (hc *hijackConn) onWrite(data []byte) {
	c := hc.c
	if c == nil {
		hc.ackWrite()
		return
	}
	if _, err := c.Write(data); err != nil {
		hc.mu.Lock()
		hc.gone = true
		hc.mu.Unlock()
		hc.ackWrite()
		return
	}
	if c.OutputFull() {
		hc.writeWait = true
		return
	}
	hc.ackWrite()
}

// Close closes the connection once its pending output is written (net.Conn). Blocked Reads
// return net.ErrClosed.
func (hc *hijackConn) Close() error {
	hc.mu.Lock()
	if hc.closed {
		hc.mu.Unlock()
		return net.ErrClosed
	}
	hc.closed = true
	hc.mu.Unlock()
	hc.notifyReader()
	hc.loop.Post(func() {
		if hc.c != nil {
			hc.c.Close()
		}
	})
	return nil
}

// LocalAddr returns the server's address of the connection (net.Conn).
func (hc *hijackConn) LocalAddr() net.Addr { return hc.local }

// RemoteAddr returns the client's address (net.Conn).
func (hc *hijackConn) RemoteAddr() net.Addr { return hc.remote }

// ConnectionState returns the connection's TLS state, or the zero value without TLS: code
// written for net/http, whose hijacked connection is a *tls.Conn on an HTTPS server, finds it
// through this method. The reactor keeps the records; the bytes read and written here are the
// plaintext.
func (hc *hijackConn) ConnectionState() tls.ConnectionState {
	if hc.tls == nil {
		return tls.ConnectionState{}
	}
	return *hc.tls
}

// SetDeadline sets both deadlines (net.Conn).
func (hc *hijackConn) SetDeadline(t time.Time) error {
	hc.SetReadDeadline(t)
	return hc.SetWriteDeadline(t)
}

// SetReadDeadline bounds Read (net.Conn); a blocked Read re-checks it at once.
func (hc *hijackConn) SetReadDeadline(t time.Time) error {
	hc.mu.Lock()
	hc.readDL = t
	hc.mu.Unlock()
	hc.notifyReader()
	return nil
}

// SetWriteDeadline bounds Write (net.Conn) from its next call.
func (hc *hijackConn) SetWriteDeadline(t time.Time) error {
	hc.mu.Lock()
	hc.writeDL = t
	hc.mu.Unlock()
	return nil
}
