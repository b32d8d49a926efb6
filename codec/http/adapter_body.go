package http

import (
	"errors"
	"io"
	nethttp "net/http"
	"os"
	"sync"
	"time"
)

// Streaming request bodies for the adapter. A request whose body is chunked or longer than
// streamMin is dispatched as soon as its head is complete; the loop then feeds the body to a
// bodyPipe as it arrives, and r.Body reads from the pipe. While pipeMax bytes wait unread the
// loop stops reading the connection (backpressure: an upload runs in constant memory however
// large it is), and the handler's reads resume it.

// streamMin is the Content-Length above which the adapter streams a body instead of reading it
// whole before dispatching the request.
const streamMin = 64 << 10

// pipeMax is the body data a pipe holds before the loop stops reading the connection.
const pipeMax = 256 << 10

// errBodyClosed is returned by reads after the handler closed the body.
var errBodyClosed = errors.New("http: read on closed request body")

// bodyPipe carries a streamed body from the loop (push, finish) to the handler (Read).
type bodyPipe struct {
	mu      sync.Mutex
	buf     []byte // unread: buf[r:]
	r       int
	err     error // io.EOF once complete, or why the body cannot complete
	closed  bool  // the handler closed the body (or returned): later data is discarded
	paused  bool  // the loop stopped reading at pipeMax
	readDL  time.Time
	notify  chan struct{}
	resume  func() // posted to the loop when a paused pipe drains below half
	post    func(func()) error
	hr      *nethttp.Request // for the trailers of a chunked body
	got     int64            // body bytes pushed
	trailer nethttp.Header   // filled by finish, moved into hr.Trailer before EOF is seen
}

func newBodyPipe(post func(func()) error, resume func()) *bodyPipe {
	return &bodyPipe{notify: make(chan struct{}, 1), post: post, resume: resume}
}

func (b *bodyPipe) wake() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// push appends data (loop goroutine) and reports whether the pipe is full: the loop must stop
// reading until resume runs.
func (b *bodyPipe) push(data []byte) (full bool) {
	b.mu.Lock()
	b.got += int64(len(data))
	if b.closed {
		b.mu.Unlock()
		return false // nobody reads: the rest of the body is discarded as it arrives
	}
	if b.r == len(b.buf) {
		b.buf, b.r = b.buf[:0], 0
	} else if b.r > 0 && len(b.buf)+len(data) > cap(b.buf) {
		n := copy(b.buf, b.buf[b.r:])
		b.buf, b.r = b.buf[:n], 0
	}
	b.buf = append(b.buf, data...)
	full = len(b.buf)-b.r >= pipeMax
	if full {
		b.paused = true
	}
	b.mu.Unlock()
	b.wake()
	return full
}

// finish ends the body (loop goroutine): err is io.EOF for a complete body, with the trailers
// of a chunked one.
func (b *bodyPipe) finish(err error, trailer nethttp.Header) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
		b.trailer = trailer
	}
	b.mu.Unlock()
	b.wake()
}

// complete reports whether the whole body arrived.
func (b *bodyPipe) complete() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err == io.EOF
}

// Read reads body bytes as they arrive (io.Reader); it blocks while none are waiting.
func (b *bodyPipe) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return 0, errBodyClosed
		}
		if b.r < len(b.buf) {
			n := copy(p, b.buf[b.r:])
			b.r += n
			resume := b.paused && len(b.buf)-b.r < pipeMax/2
			if resume {
				b.paused = false
			}
			b.mu.Unlock()
			if resume {
				b.post(b.resume)
			}
			return n, nil
		}
		if b.err != nil {
			err := b.err
			if err == io.EOF && b.trailer != nil && b.hr != nil {
				// net/http fills Request.Trailer just before the body reports EOF.
				if b.hr.Trailer == nil {
					b.hr.Trailer = make(nethttp.Header, len(b.trailer))
				}
				for k, v := range b.trailer {
					b.hr.Trailer[k] = v
				}
				b.trailer = nil
			}
			b.mu.Unlock()
			return 0, err
		}
		if len(p) == 0 {
			b.mu.Unlock()
			return 0, nil
		}
		dl := b.readDL
		b.mu.Unlock()
		if !waitUntil(b.notify, dl) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Close discards the rest of the body (io.Closer): the loop keeps reading it and throws it
// away, so the next request on the connection is found where it starts.
func (b *bodyPipe) Close() error {
	b.mu.Lock()
	wasPaused := b.paused
	b.closed, b.paused = true, false
	b.buf, b.r = nil, 0
	b.mu.Unlock()
	b.wake()
	if wasPaused {
		b.post(b.resume)
	}
	return nil
}

// setReadDeadline bounds later (and a blocked) Read.
func (b *bodyPipe) setReadDeadline(t time.Time) {
	b.mu.Lock()
	b.readDL = t
	b.mu.Unlock()
	b.wake()
}

// feedBody hands the input of a streamed body to the request's pipe (loop goroutine). It
// returns the bytes consumed and whether the loop must stop consuming (the pipe is full, or
// the body failed and the connection is closing).
func (cs *conn) feedBody(in []byte, now int64) (int, bool) {
	ad := cs.ad
	pipe := ad.body
	n, data, done, err := cs.p.ParseBody(in)
	if err != nil {
		if len(data) > 0 {
			pipe.push(data)
		}
		ad.body = nil
		pipe.finish(err, nil)
		// The handler may still answer (it sees the error on r.Body); nothing after the
		// broken body can be read.
		cs.flags |= csDone
		return len(in), true
	}
	full := false
	if len(data) > 0 {
		full = pipe.push(data)
	}
	if done {
		ad.body = nil
		var trailer nethttp.Header
		if req := &cs.p.req; req.NumTrailers() > 0 {
			trailer = make(nethttp.Header, req.NumTrailers())
			for i := 0; i < req.NumTrailers(); i++ {
				name, value := req.TrailerAt(i)
				key := nethttp.CanonicalHeaderKey(string(name))
				trailer[key] = append(trailer[key], string(value))
			}
		}
		pipe.finish(io.EOF, trailer)
		cs.reqStart = now
	}
	if full {
		cs.pause()
	}
	return n, full
}
