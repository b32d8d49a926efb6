package servers

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxCanned is how many back-to-back responses one canned buffer holds: enough for the
// deepest pipelining the harness is normally run with, so a batch of n ≤ maxCanned responses
// is a sub-slice and costs no allocation or copy.
const maxCanned = 64

// cannedSet is maxCanned copies of the full response with one Date value. Every copy has the
// same length because the Date format is fixed-width.
type cannedSet struct {
	one int
	buf []byte
}

func buildCanned(now time.Time) *cannedSet {
	one := "HTTP/1.1 200 OK\r\nDate: " + now.UTC().Format(http.TimeFormat) +
		"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" + Body
	b := make([]byte, 0, len(one)*maxCanned)
	for range maxCanned {
		b = append(b, one...)
	}
	return &cannedSet{one: len(one), buf: b}
}

// dateClock keeps the canned responses' Date header current. A goroutine rebuilds the set once
// a second while at least one server uses it, so the request path reads one atomic pointer
// and never calls time.Now.
type dateClock struct {
	cur  atomic.Pointer[cannedSet]
	mu   sync.Mutex
	refs int
	stop chan struct{}
	done chan struct{}
}

var clock dateClock

// acquire starts the ticking goroutine for the first user.
func (d *dateClock) acquire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refs++
	if d.refs > 1 {
		return
	}
	d.cur.Store(buildCanned(time.Now()))
	d.stop = make(chan struct{})
	d.done = make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				d.cur.Store(buildCanned(now))
			}
		}
	}(d.stop, d.done)
}

// release stops the goroutine when the last user is gone.
func (d *dateClock) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs == 0 {
		return
	}
	d.refs--
	if d.refs == 0 {
		close(d.stop)
		<-d.done
	}
}

// responses returns n back-to-back responses. The slice is shared and read-only: callers hand
// it to a write or a copying buffer, never modify it. For n > maxCanned it is allocated.
func (d *dateClock) responses(n int) []byte {
	c := d.cur.Load()
	if c == nil {
		c = buildCanned(time.Now())
	}
	if n <= maxCanned {
		return c.buf[:n*c.one]
	}
	out := make([]byte, 0, n*c.one)
	for n > 0 {
		k := min(n, maxCanned)
		out = append(out, c.buf[:k*c.one]...)
		n -= k
	}
	return out
}
