package reactor

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// shedLineHandler answers each complete line with "ok\n" and leaves a partial line unconsumed,
// the way a framing codec treats an incomplete request head. Connections it closes with
// ErrShed are recorded in order, by the peer's address.
type shedLineHandler struct {
	mu   sync.Mutex
	shed []netip.AddrPort
	errs []error
}

func (h *shedLineHandler) OnOpen(*Conn) {}

func (h *shedLineHandler) OnData(c *Conn, in []byte) int {
	n := strings.LastIndexByte(string(in), '\n') + 1
	for range strings.Count(string(in[:n]), "\n") {
		c.Write([]byte("ok\n"))
	}
	return n
}

func (h *shedLineHandler) OnClose(c *Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if errors.Is(err, ErrShed) {
		h.shed = append(h.shed, c.RemoteAddrPort())
	} else if err != nil && !errors.Is(err, io.EOF) {
		h.errs = append(h.errs, err)
	}
}

func (h *shedLineHandler) shedOrder() []netip.AddrPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]netip.AddrPort(nil), h.shed...)
}

// TestShedAtCapLeastProgressFirst fills a server capped at six connections with, in accept
// order, an idle connection that completed a line, a silent one, one inside its second line,
// two more silent ones and another idle one; each new client then sends a line and must be
// answered, and the connections shed to admit them must go silent ones oldest first, then the
// one inside a line, then the idle ones oldest first.
func TestShedAtCapLeastProgressFirst(t *testing.T) {
	h := &shedLineHandler{}
	s, addr := startServer(t, h, WithMaxConns(6), WithLoops(1), WithShedding(true))
	type kind int
	const (
		silent kind = iota // sent a partial line only
		inLine             // completed a line, then sent part of another
		idle               // completed a line, sent nothing more
	)
	var sentBytes uint64
	open := func(k kind) net.Conn {
		t.Helper()
		c := dial(t, "tcp", addr)
		r := bufio.NewReader(c)
		if k != silent {
			c.Write([]byte("hello\n"))
			sentBytes += 6
			c.SetReadDeadline(testsupport.Deadline(5 * time.Second))
			if line, err := r.ReadString('\n'); err != nil || line != "ok\n" {
				t.Fatalf("answer %q, %v", line, err)
			}
		}
		if k != idle {
			c.Write([]byte("par"))
			sentBytes += 3
		}
		// The next connection must be younger in the loop's order, and the partial line
		// must have been offered to OnData: wait until the server has read it all.
		want := sentBytes
		testsupport.Eventually(t, 5*time.Second, "bytes read", func() bool { return s.Stats().BytesIn >= want })
		return c
	}
	layout := []kind{idle, silent, inLine, silent, silent, idle}
	conns := make([]net.Conn, len(layout))
	for i, k := range layout {
		conns[i] = open(k)
	}
	testsupport.Eventually(t, 5*time.Second, "six open", func() bool { return s.Stats().ConnsOpen == 6 })
	addrOf := func(c net.Conn) netip.AddrPort { return c.LocalAddr().(*net.TCPAddr).AddrPort() }
	wantOrder := []int{1, 3, 4, 2, 0, 5}
	for i := range wantOrder {
		open(idle) // a new client: admitted, and answered
		got := h.shedOrder()
		if len(got) != i+1 {
			t.Fatalf("after %d new clients, %d shed: %v", i+1, len(got), got)
		}
		if want := addrOf(conns[wantOrder[i]]); got[i] != want {
			t.Fatalf("shed #%d was %v, want connection %d (%v); layout %v", i, got[i], wantOrder[i], want, layout)
		}
	}
	if st := s.Stats(); st.ConnsShed != uint64(len(wantOrder)) || st.ConnsOpen != 6 {
		t.Fatalf("stats %+v, want %d shed and 6 open", st, len(wantOrder))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) != 0 {
		t.Fatalf("other close errors: %v", h.errs)
	}
}

// TestShedKeepsBusyConnections: held connections and connections with output pending are
// never shed; with nothing else to shed the server pauses accepting as without shedding.
func TestShedKeepsBusyConnections(t *testing.T) {
	h := &shedLineHandler{}
	held := make(chan *Conn, 2)
	hf := HandlerFuncs{
		Open: func(c *Conn) { c.Hold(); held <- c },
		Data: h.OnData, Close: h.OnClose,
	}
	s, addr := startServer(t, hf, WithMaxConns(2), WithLoops(1), WithShedding(true))
	dial(t, "tcp", addr)
	dial(t, "tcp", addr)
	<-held
	<-held
	third := dial(t, "tcp", addr)
	third.Write([]byte("x"))
	testsupport.Eventually(t, 5*time.Second, "accept paused", func() bool { return s.Stats().AcceptPaused > 0 })
	if st := s.Stats(); st.ConnsShed != 0 || st.ConnsOpen != 2 {
		t.Fatalf("busy connections shed or cap exceeded: %+v", st)
	}
}

// TestConnCapReserve: with shedding the cap keeps a share of RLIMIT_NOFILE free.
func TestConnCapReserve(t *testing.T) {
	tests := []struct{ nofile, reserve uint64 }{
		{256, 32}, {1024, 32}, {20000, 625}, {1 << 20, 1024},
	}
	for _, tc := range tests {
		if got := fdReserve(tc.nofile); got != tc.reserve {
			t.Errorf("fdReserve(%d) = %d, want %d", tc.nofile, got, tc.reserve)
		}
	}
	o := defaultOptions()
	if c := o.connCap(); c != 0 {
		t.Errorf("connCap without shedding or a cap = %d, want 0", c)
	}
	o.maxConns = 10
	o.shed = true
	if c := o.connCap(); c != 10 {
		t.Errorf("connCap with WithMaxConns(10) = %d, want 10", c)
	}
	o.maxConns = 0
	if c := o.connCap(); c <= 0 {
		t.Errorf("connCap with shedding = %d, want RLIMIT_NOFILE less a reserve", c)
	}
	for _, tc := range []struct {
		open int64
		want int
	}{{0, 1}, {6, 1}, {216, 54}, {19000, 64}} {
		if got := shedBatch(tc.open); got != tc.want {
			t.Errorf("shedBatch(%d) = %d, want %d", tc.open, got, tc.want)
		}
	}
}

// TestShedGroupPublishedAtAccept: a loop's shedding group, which the server's other loops read
// before shedding their own connections (Loop.shed), drops to the first group as soon as a
// connection arrives there. Published only at the loop's last shed, it could say "idle
// connections only" (or "none") while a silent one waits for its first byte, and another loop
// out of descriptors — a limit of the process — would shed its idle keep-alive connections
// first (seen once in the flake hunt: test/hardening TestConnectionFlood's keep-alive
// connection closed as the flood drained).
func TestShedGroupPublishedAtAccept(t *testing.T) {
	s, addr := startServer(t, &shedLineHandler{}, WithLoops(2), WithMaxConns(100), WithShedding(true))
	loops := *s.loopsPtr.Load()
	for _, l := range loops {
		done := make(chan struct{})
		if err := l.Post(func() { l.shedLowest.Store(3); close(done) }); err != nil {
			t.Fatal(err)
		}
		testsupport.Recv(t, done, 5*time.Second, "the loop to publish no shedding group, as after a shed that found nothing")
	}
	// Silent connections until each loop holds one (the kernel or the round-robin spreads them).
	for i := 0; i < 64 && (loops[0].openConns.Load() == 0 || loops[1].openConns.Load() == 0); i++ {
		dial(t, "tcp", addr)
		want := int64(i + 1)
		testsupport.Eventually(t, 5*time.Second, "the connection accepted", func() bool {
			return loops[0].openConns.Load()+loops[1].openConns.Load() >= want
		})
	}
	for i, l := range loops {
		if l.openConns.Load() == 0 {
			t.Skipf("64 connections all went to one loop; cannot check loop %d", i)
		}
		if g := l.shedLowest.Load(); g != 0 {
			t.Errorf("loop %d holds a silent connection but publishes shedding group %d, want 0", i, g)
		}
	}
}
