package servers

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/evio"
)

func evioServer() Server {
	return Server{
		Name:        "evio",
		Description: "tidwall/evio event loop (CRLFCRLF + Content-Length framing, canned reply)",
		start:       startEvio,
	}
}

type evioInstance struct {
	addr    string
	closing atomic.Bool
	done    chan error
	once    sync.Once
	err     error
}

// evioConn holds the unparsed tail of a connection's input, nil while there is none, so that
// an idle connection holds no buffer.
type evioConn struct{ tail []byte }

func startEvio(ctx context.Context, o Options) (Instance, error) {
	tcp, err := net.ResolveTCPAddr("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("evio: %w: %w", ErrBadOptions, err)
	}
	in := &evioInstance{done: make(chan error, 1)}
	ready := make(chan string, 1)
	var ev evio.Events
	ev.NumLoops = o.Loops
	ev.Serving = func(s evio.Server) evio.Action {
		ready <- s.Addrs[0].String()
		return evio.None
	}
	ev.Opened = func(c evio.Conn) ([]byte, evio.Options, evio.Action) {
		c.SetContext(&evioConn{})
		// The input slice is the loop's buffer, reused for the next read: tails are copied.
		return nil, evio.Options{ReuseInputBuffer: true}, evio.None
	}
	ev.Data = func(c evio.Conn, data []byte) ([]byte, evio.Action) {
		st, _ := c.Context().(*evioConn)
		if st == nil {
			return nil, evio.Close
		}
		buf := data
		if st.tail != nil {
			st.tail = append(st.tail, data...)
			buf = st.tail
		}
		n, used, err := frameRequests(buf)
		if err != nil {
			return nil, evio.Close
		}
		if rest := buf[used:]; len(rest) > 0 {
			st.tail = append(st.tail[:0], rest...)
		} else {
			st.tail = nil
		}
		if n == 0 {
			return nil, evio.None
		}
		// evio copies out into the connection's own output buffer before returning.
		return clock.responses(n), evio.None
	}
	ev.Tick = func() (time.Duration, evio.Action) {
		// evio stops only from a callback: poll the closing flag ten times a second.
		if in.closing.Load() {
			return 0, evio.Shutdown
		}
		return 100 * time.Millisecond, evio.None
	}
	u := "tcp://" + net.JoinHostPort(tcp.IP.String(), strconv.Itoa(tcp.Port))
	if o.Loops > 1 {
		u += "?reuseport=true"
	}
	clock.acquire()
	go func() { in.done <- evio.Serve(ev, u) }()
	select {
	case in.addr = <-ready:
		return in, nil
	case err := <-in.done:
		clock.release()
		return nil, fmt.Errorf("evio: %w", err)
	case <-ctx.Done():
		in.closing.Store(true)
		<-in.done
		clock.release()
		return nil, ctx.Err()
	}
}

func (e *evioInstance) Addr() string { return e.addr }
func (e *evioInstance) PID() int     { return os.Getpid() }

func (e *evioInstance) Close() error {
	e.once.Do(func() {
		e.closing.Store(true)
		e.err = <-e.done
		clock.release()
	})
	return e.err
}
