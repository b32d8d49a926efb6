package websocket

import (
	"net"
	"testing"

	"github.com/reactord/reactord/reactor"
)

// fakeConn stands in for the reactor connection so that the frame code can be driven byte by
// byte (fuzzing, allocation counts, CPU benchmarks without system calls). It lives on a real
// loop: the Conn's timers are that loop's, so everything runs inside Loop.Post.
type fakeConn struct {
	loop    *reactor.Loop
	h       connHandler
	out     []byte // everything written
	keep    bool   // keep the output (tests) or drop it (benchmarks)
	full    bool   // what OutputFull reports
	closing bool   // Close was called
	closed  bool
}

func (f *fakeConn) Write(p []byte) (int, error) {
	if f.closed || f.closing {
		return 0, reactor.ErrConnClosed
	}
	if f.keep {
		f.out = append(f.out, p...)
	}
	return len(p), nil
}

func (f *fakeConn) Buffered() int        { return 0 }
func (f *fakeConn) OutputFull() bool     { return f.full }
func (f *fakeConn) Loop() *reactor.Loop  { return f.loop }
func (f *fakeConn) RemoteAddr() net.Addr { return nil }

// Close is the reactor's graceful close: OnClose follows once the output is written, which
// the fake's owner triggers with finishClose (the reactor does it at the end of an iteration).
func (f *fakeConn) Close() error {
	f.closing = true
	return nil
}

// CloseNow calls OnClose at once, as the reactor does.
func (f *fakeConn) CloseNow() error {
	if !f.closed {
		f.closed = true
		f.h.OnClose(nil, nil)
	}
	return nil
}

// finishClose completes a graceful Close (or closes the connection for good at the end of a
// test, which stops its timers).
func (f *fakeConn) finishClose() {
	if !f.closed {
		f.closed = true
		f.h.OnClose(nil, nil)
	}
}

// loopRunner is a reactor server without listeners whose one loop runs test code.
type loopRunner struct {
	srv  *reactor.Server
	loop *reactor.Loop
}

func newLoopRunner(tb testing.TB) *loopRunner {
	tb.Helper()
	srv, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1))
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return &loopRunner{srv: srv, loop: srv.Loops()[0]}
}

// run runs f on the loop and waits for it.
func (lr *loopRunner) run(tb testing.TB, f func()) {
	tb.Helper()
	done := make(chan any, 1)
	if err := lr.loop.Post(func() {
		defer func() { done <- recover() }()
		f()
	}); err != nil {
		tb.Fatal(err)
	}
	if v := <-done; v != nil {
		panic(v)
	}
}

// openFake opens a Conn of u on a fake connection. Loop goroutine.
func openFake(u *Upgrader, loop *reactor.Loop, mode deflateMode) (*Conn, *fakeConn) {
	c := &Conn{u: u}
	if mode.on {
		c.dfl = &connDeflate{mode: mode}
	}
	f := &fakeConn{loop: loop, h: connHandler{c}, keep: true}
	c.open(f)
	return c, f
}

// feed hands data to the connection in chunks of at most chunk bytes, keeping what OnData
// leaves unconsumed in front of the next chunk, as the reactor does. It returns false if a
// consumed count broke the contract.
func feed(c *Conn, f *fakeConn, data []byte, chunk int) bool {
	var kept []byte
	for len(data) > 0 && !f.closed && !f.closing {
		n := min(chunk, len(data))
		in := append(kept, data[:n]...)
		data = data[n:]
		consumed := connHandler{c}.OnData(nil, in)
		if consumed < 0 || consumed > len(in) {
			return false
		}
		kept = append([]byte(nil), in[consumed:]...)
	}
	return true
}
