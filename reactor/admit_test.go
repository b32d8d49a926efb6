package reactor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// limitAdmitter admits up to limit connections per address and checks the reactor's side of
// the contract: every Release matches an Admit of the same address (a Release with nothing
// admitted is recorded as an error).
type limitAdmitter struct {
	limit                      int
	mu                         sync.Mutex
	open                       map[netip.Addr]int
	admits, releases, refusals int
	errs                       []string
}

func newLimitAdmitter(limit int) *limitAdmitter {
	return &limitAdmitter{limit: limit, open: map[netip.Addr]int{}}
}

func (a *limitAdmitter) Admit(peer netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if peer.Is4In6() || peer.Zone() != "" || !peer.IsValid() {
		a.errs = append(a.errs, fmt.Sprintf("Admit(%v): not a plain address", peer))
	}
	if a.open[peer] >= a.limit {
		a.refusals++
		return false
	}
	a.open[peer]++
	a.admits++
	return true
}

func (a *limitAdmitter) Release(peer netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[peer] <= 0 {
		a.errs = append(a.errs, fmt.Sprintf("Release(%v) with none admitted", peer))
		return
	}
	a.releases++
	if a.open[peer]--; a.open[peer] == 0 {
		delete(a.open, peer)
	}
}

// counts returns the connections open from peer, and the totals.
func (a *limitAdmitter) counts(peer netip.Addr) (open, admits, releases, refusals int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.open[peer], a.admits, a.releases, a.refusals
}

func (a *limitAdmitter) check(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) > 0 {
		t.Fatalf("admitter contract broken: %v", a.errs)
	}
}

// dialFrom connects to addr (TCP) from the local IP src, for a second client address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: testsupport.Scale(5 * time.Second), LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	c.SetDeadline(testsupport.Deadline(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// echoes sends a line on c and reads it back: the server serves c.
func echoes(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q, %v; want %q", got, err, msg)
	}
}

// closedSilently asserts the server closed c without writing a byte to it.
func closedSilently(t *testing.T, c net.Conn) {
	t.Helper()
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read %d bytes, %v; want 0 and EOF or a reset", n, err)
	}
}

// TestAdmitter runs a server limited to two connections per client address, on every backend
// with two loops (so that connections are handed between loops): two connections from
// 127.0.0.1 are served; a third is closed without a byte written and never reaches the
// Handler, and is counted in Stats.ConnsRefused; 127.0.0.2 is still served; once one of the
// first two closes, 127.0.0.1 may connect again. Unix-socket connections are not limited
// (Admit is never asked), and a TLS listener refuses before any handshake.
func TestAdmitter(t *testing.T) {
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		// macOS configures only 127.0.0.1 on lo0; Linux routes all of 127.0.0.0/8 to it.
		t.Skipf("no second loopback address for a second client: %v", err)
	} else {
		ln.Close()
	}
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			a := newLimitAdmitter(2)
			var opened atomic.Int32
			h := HandlerFuncs{
				Open: func(*Conn) { opened.Add(1) },
				Data: func(c *Conn, in []byte) int { c.Write(in); return len(in) },
			}
			s, err := NewServer(h, WithPoller(b.Name), WithLoops(2), WithAdmitter(a))
			if err != nil {
				t.Fatal(err)
			}
			tcp, err := s.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			unixAddr, err := s.Listen("unix", filepath.Join(t.TempDir(), "s"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			addr := tcp.String()

			c1, c2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
			echoes(t, c1, "one\n")
			echoes(t, c2, "two\n")
			closedSilently(t, dialFrom(t, "127.0.0.1", addr))
			echoes(t, dialFrom(t, "127.0.0.2", addr), "other\n")
			for i := range 3 {
				echoes(t, dial(t, "unix", unixAddr.String()), fmt.Sprintf("unix %d\n", i))
			}
			if open, admits, _, refusals := a.counts(lo1); open != 2 || admits != 3 || refusals != 1 {
				t.Fatalf("127.0.0.1: %d open, %d admitted, %d refused; want 2, 3 (with 127.0.0.2), 1", open, admits, refusals)
			}
			if open, _, _, _ := a.counts(lo2); open != 1 {
				t.Fatalf("127.0.0.2: %d open, want 1", open)
			}
			if st := s.Stats(); st.ConnsRefused != 1 {
				t.Fatalf("Stats.ConnsRefused = %d, want 1", st.ConnsRefused)
			}
			if n := opened.Load(); n != 6 {
				t.Fatalf("OnOpen ran %d times, want 6 (2 + 1 TCP, 3 Unix): the refused connection reached the Handler?", n)
			}

			// Released on close: 127.0.0.1 has room again.
			c1.Close()
			testsupport.Eventually(t, 5*time.Second, "release of the closed connection", func() bool {
				open, _, _, _ := a.counts(lo1)
				return open == 1
			})
			echoes(t, dialFrom(t, "127.0.0.1", addr), "again\n")
			a.check(t)
		})
	}
}

// TestAdmitterTLSRefusesBeforeHandshake: on a TLS listener a refused connection is closed
// before the handshake starts — the client's handshake fails, and the server counts no
// handshake of any outcome for it.
func TestAdmitterTLSRefusesBeforeHandshake(t *testing.T) {
	a := newLimitAdmitter(0)
	s, addr := startTLSServer(t, echoHandler(), serverTLS(t), WithLoops(1), WithAdmitter(a))
	tc := tls.Client(dialFrom(t, "127.0.0.1", addr), clientTLS(t))
	if err := tc.Handshake(); err == nil {
		t.Fatal("handshake succeeded on a refused connection")
	}
	testsupport.Eventually(t, 5*time.Second, "refusal counted", func() bool { return s.Stats().ConnsRefused == 1 })
	st := s.Stats()
	if n := st.TLSHandshakes + st.TLSHandshakeErrors + st.TLSHandshakeTimeouts + st.TLSHandshakesAborted; n != 0 || st.ConnsAccepted != 0 {
		t.Fatalf("stats %+v: the refused connection reached the loop or the handshake", st)
	}
	a.check(t)
}

// TestAdmitterReleasedOnClose: every connection admitted is released exactly once, whichever
// way it ends — the client closing, the Handler closing it, still open at Shutdown (an idle
// one closed by the drain, a held one by the Close that follows the Shutdown's timeout), or
// never served: clients past the connection cap (with every connection held, shedding has
// nothing to close for them) wait in the kernel's queue, on every backend — the completion
// mode's accepts take only what the cap has room for — and are never admitted, so never
// released. A refused connection is never released.
func TestAdmitterReleasedOnClose(t *testing.T) {
	lo1 := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		opts []Option
		// served are the connections opened after the first two, each sending this;
		// then waiting more connect, which the server does not serve.
		served  []string
		waiting int
	}{
		{"shutdown", nil, []string{"idle", "hold", "idle"}, 0},
		{"past the cap", []Option{WithMaxConns(4), WithShedding(true)}, []string{"hold", "hold", "hold", "hold"}, 2},
	}
	for _, b := range backends(t) {
		for _, tc := range tests {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				a := newLimitAdmitter(5)
				h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
					switch string(in) {
					case "close":
						c.Close()
					case "hold":
						c.Hold() // Shutdown waits for it; the Close after its timeout closes it
						c.Write([]byte("held"))
					default:
						c.Write(in)
					}
					return len(in)
				}}
				opts := append([]Option{WithPoller(b.Name), WithLoops(2), WithAdmitter(a)}, tc.opts...)
				s, err := NewServer(h, opts...)
				if err != nil {
					t.Fatal(err)
				}
				tcp, err := s.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				addr := tcp.String()

				byClient := dialFrom(t, "127.0.0.1", addr)
				echoes(t, byClient, "x")
				byClient.Close()
				byServer := dialFrom(t, "127.0.0.1", addr)
				byServer.Write([]byte("close"))
				closedSilently(t, byServer)
				testsupport.Eventually(t, 5*time.Second, "two released", func() bool {
					_, _, releases, _ := a.counts(lo1)
					return releases == 2
				})
				for _, msg := range tc.served {
					c := dialFrom(t, "127.0.0.1", addr)
					c.Write([]byte(msg))
					want := msg
					if msg == "hold" {
						want = "held"
					}
					got := make([]byte, len(want))
					if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
						t.Fatalf("answer %q, %v; want %q", got, err, want)
					}
				}
				for range tc.waiting {
					dialFrom(t, "127.0.0.1", addr)
				}

				ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(200*time.Millisecond))
				defer cancel()
				if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Shutdown = %v, want the deadline (a connection is held)", err)
				}
				open, admits, releases, _ := a.counts(lo1)
				if open != 0 || admits != releases || admits < 2+len(tc.served) {
					t.Fatalf("after Shutdown: %d open, %d admitted, %d released; want 0 open, every admitted (at least %d) released",
						open, admits, releases, 2+len(tc.served))
				}
				a.check(t)
			})
		}
	}
}
