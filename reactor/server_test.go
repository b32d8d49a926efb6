package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/poller"
)

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		opts []Option
		want error
	}{
		{"nil handler", nil, nil, ErrInvalidArgument},
		{"negative loops", echoHandler(), []Option{WithLoops(-1)}, ErrInvalidOption},
		{"too many loops", echoHandler(), []Option{WithLoops(5000)}, ErrInvalidOption},
		{"unknown poller", echoHandler(), []Option{WithPoller("nope")}, poller.ErrUnknownBackend},
		{"keepalive", echoHandler(), []Option{WithTCPKeepAlive(-time.Second)}, ErrInvalidOption},
		{"buffers", echoHandler(), []Option{WithSocketBuffers(-1, 0)}, ErrInvalidOption},
		{"backlog", echoHandler(), []Option{WithBacklog(-1)}, ErrInvalidOption},
		{"read buffer small", echoHandler(), []Option{WithReadBufferSize(10)}, ErrInvalidOption},
		{"watermarks inverted", echoHandler(), []Option{WithWatermarks(100, 200)}, ErrInvalidOption},
		{"watermarks zero", echoHandler(), []Option{WithWatermarks(0, 0)}, ErrInvalidOption},
		{"max conns", echoHandler(), []Option{WithMaxConns(-5)}, ErrInvalidOption},
		{"nil logger", echoHandler(), []Option{WithLogger(nil)}, ErrInvalidOption},
		{"balancing", echoHandler(), []Option{WithLoadBalancing(LoadBalancing(9))}, ErrInvalidOption},
		{"idle timeout", echoHandler(), []Option{WithIdleTimeout(-1)}, ErrInvalidOption},
		{"nil option", echoHandler(), []Option{nil}, ErrInvalidOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.h, tc.opts...)
			if !errors.Is(err, tc.want) || s != nil {
				t.Fatalf("NewServer = %v, %v; want error %v", s, err, tc.want)
			}
		})
	}
	// Valid extremes are accepted.
	if _, err := NewServer(echoHandler(), WithLoops(0), WithWatermarks(10, 0), WithReadBufferSize(512),
		WithLogger(zap.NewNop()), WithReuseAddr(false), WithReusePort(true), WithTCPNoDelay(false),
		WithSocketBuffers(1<<16, 1<<16), WithBacklog(16), WithMaxConns(1), WithBroadcast(true),
		WithTCPKeepAlive(time.Second)); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
}

func TestListenErrors(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		network, addr string
		want          error
	}{
		{"udp", "127.0.0.1:0", ErrUnsupportedNetwork},
		{"ip", "127.0.0.1", ErrUnsupportedNetwork},
		{"tcp", "127.0.0.1:99999", ErrBadAddress},
		{"tcp4", "[::1]:0", ErrBadAddress},
		{"unix", "", ErrBadAddress},
	}
	for _, tc := range tests {
		if _, err := s.Listen(tc.network, tc.addr); !errors.Is(err, tc.want) {
			t.Errorf("Listen(%q, %q) = %v, want %v", tc.network, tc.addr, err, tc.want)
		}
	}
	if _, err := s.ListenPacket("tcp", "127.0.0.1:0", PacketHandlerFunc(nil)); !errors.Is(err, ErrUnsupportedNetwork) {
		t.Errorf("ListenPacket(tcp) = %v", err)
	}
	if _, err := s.ListenPacket("udp", "127.0.0.1:0", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ListenPacket(nil handler) = %v", err)
	}
	// An address in use is the kernel's error.
	a, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen("tcp", a.String()); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("second Listen on %s = %v, want EADDRINUSE", a, err)
	}
	s.Close()
	if _, err := s.Listen("tcp", "127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Listen after Close = %v", err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Close = %v", err)
	}
}

func TestListenAfterStartAndServe(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	testsupport.Eventually(t, 5*time.Second, "started", func() bool { return len(s.Loops()) == 2 })
	if err := s.Start(); !errors.Is(err, ErrServerStarted) {
		t.Fatalf("second Start = %v", err)
	}
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, "tcp", addr.String())
	c.Write([]byte("late"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "late" {
		t.Fatalf("echo %q %v", got, err)
	}
	s.Close()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Shutdown(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Shutdown after Close = %v", err)
	}
}

func TestCloseBeforeStartReleasesSockets(t *testing.T) {
	s, err := NewServer(echoHandler())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListenPacket("udp", "127.0.0.1:0", PacketHandlerFunc(func(*PacketConn, []byte, net.Addr) {})); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ln, err := net.Listen("tcp", a.String())
	if err != nil {
		t.Fatalf("port still bound after Close: %v", err)
	}
	ln.Close()
}

func TestTimersAndPost(t *testing.T) {
	s, _ := startServer(t, echoHandler(), WithLoops(1))
	l := s.Loops()[0]
	type result struct {
		order []string
		every int
	}
	done := make(chan result, 1)
	if err := l.Post(func() {
		var r result
		var ev *Timer
		// Every deadline is set from one base instant, so the order below does not depend
		// on how long this function takes to run (AfterFunc reads the clock afresh).
		base := l.clock()
		at := func(d time.Duration) time.Duration { return d - time.Duration(l.clock()-base) }
		// The result is sent once both the last one-shot and the check after the Every
		// timer's Stop have run, whatever the loop's delays: a stalled loop runs due
		// timers late, but still in deadline order.
		pending := 2
		finish := func() {
			if pending--; pending == 0 {
				done <- r
			}
		}
		l.AfterFunc(at(30*time.Millisecond), func() { r.order = append(r.order, "30ms"); finish() })
		stopped := l.AfterFunc(at(10*time.Millisecond), func() { r.order = append(r.order, "stopped") })
		if !stopped.Stop() || stopped.Stop() {
			panic("Stop results wrong")
		}
		moved := l.AfterFunc(time.Hour, func() { r.order = append(r.order, "reset") })
		moved.Reset(at(20 * time.Millisecond))
		l.AfterFunc(at(10*time.Millisecond), func() { r.order = append(r.order, "10ms") })
		const period = 5 * time.Millisecond
		ev = l.Every(period, func() {
			r.every++
			if r.every == 3 {
				ev.Stop()
				// Due after the next run a stopped Every would have made: if Stop did
				// not hold, that run comes first.
				l.AfterFunc(3*period, finish)
			}
		})
		if l.AfterFunc(time.Second, nil) != nil || l.Every(0, func() {}) != nil {
			panic("invalid timers accepted")
		}
	}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if got := r.order; len(got) != 3 || got[0] != "10ms" || got[1] != "reset" || got[2] != "30ms" {
		t.Fatalf("timer order %v", got)
	}
	if r.every != 3 {
		t.Fatalf("Every ran %d times after Stop at 3", r.every)
	}
	if err := l.Post(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Post(nil) = %v", err)
	}
	var ran atomic.Bool
	nowOK := make(chan bool, 1)
	l.Post(func() {
		ran.Store(true)
		nowOK <- !l.Now().IsZero() && l.Index() == 0
	})
	if !<-nowOK {
		t.Fatal("Now/Index wrong")
	}
	s.Close()
	if err := l.Post(func() {}); !errors.Is(err, ErrLoopClosed) {
		t.Fatalf("Post after Close = %v", err)
	}
}

func TestMaxConnsPausesAccepting(t *testing.T) {
	s, addr := startServer(t, echoHandler(), WithMaxConns(2), WithLoops(1))
	a := dial(t, "tcp", addr)
	b := dial(t, "tcp", addr)
	testsupport.Eventually(t, 5*time.Second, "two open", func() bool { return s.Stats().ConnsOpen == 2 })
	third := dial(t, "tcp", addr) // completes the handshake in the backlog
	third.Write([]byte("3"))
	testsupport.Eventually(t, 5*time.Second, "accept paused", func() bool { return s.Stats().AcceptPaused > 0 })
	// ConnsOpen, not ConnsAccepted: the loop publishes its counters at the end of an
	// iteration, and the pause (AcceptPaused, immediate) can be seen before the iteration
	// that accepted the second connection has published it. ConnsOpen counts every accept
	// as it happens, so a third accept would show at once.
	if st := s.Stats(); st.ConnsOpen != 2 {
		t.Fatalf("accepted beyond the cap: %+v", st)
	}
	a.Close()
	b.Close()
	got := make([]byte, 1)
	if _, err := io.ReadFull(third, got); err != nil || got[0] != '3' {
		t.Fatalf("third conn not served after slots freed: %v", err)
	}
}
