package reactor

import (
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

func udpEcho() PacketHandler {
	return PacketHandlerFunc(func(pc *PacketConn, data []byte, from net.Addr) {
		pc.WriteTo(data, from)
	})
}

func TestUDPEcho(t *testing.T) {
	for _, b := range backends(t) {
		for _, lb := range []LoadBalancing{RoundRobin, PerLoopListeners} {
			t.Run(b.Name+"/"+lb.String(), func(t *testing.T) {
				s, err := NewServer(echoHandler(), WithPoller(b.Name), WithLoops(2), WithLoadBalancing(lb))
				if err != nil {
					t.Fatal(err)
				}
				addr, err := s.ListenPacket("udp", "127.0.0.1:0", udpEcho())
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Start(); err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				c := dial(t, "udp", addr.String())
				buf := make([]byte, 2048)
				for i := 0; i < 20; i++ {
					msg := []byte{byte(i), 'u', 'd', 'p'}
					// UDP may drop: resend until the echo arrives. A resend can also
					// cross a late echo, whose duplicate then arrives while a later
					// message is awaited: an echo of an earlier message is skipped.
					giveUp := testsupport.Deadline(10 * time.Second)
					for {
						c.Write(msg)
						c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // resend interval
						n, err := c.Read(buf)
						if err == nil && string(buf[:n]) == string(msg) {
							break
						}
						if err == nil && (n != len(msg) || buf[0] >= byte(i) || string(buf[1:n]) != "udp") {
							t.Fatalf("echo %q, want %q", buf[:n], msg)
						}
						if ne, ok := err.(net.Error); err != nil && (!ok || !ne.Timeout()) {
							t.Fatal(err)
						}
						if time.Now().After(giveUp) {
							t.Fatalf("no echo of %q", msg)
						}
					}
				}
			})
		}
	}
}

func TestUDPBroadcastNeedsOption(t *testing.T) {
	if runtime.GOOS != "linux" {
		// Linux's lo has the broadcast address 127.255.255.255; lo0 on macOS and FreeBSD has
		// none, so there is no broadcast that stays on the loopback to test with.
		t.Skipf("no loopback broadcast address on %s", runtime.GOOS)
	}
	bcast := &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: 9}
	for _, on := range []bool{false, true} {
		s, err := NewServer(echoHandler(), WithLoops(1), WithBroadcast(on))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *PacketConn, 1)
		if _, err := s.ListenPacket("udp4", "127.0.0.1:0", udpEcho()); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		got <- s.packets[0]
		s.mu.Unlock()
		pc := <-got
		err = pc.WriteTo([]byte("hello"), bcast)
		if on && err != nil {
			t.Errorf("broadcast with SO_BROADCAST: %v", err)
		}
		if !on && !errors.Is(err, unix.EACCES) {
			t.Errorf("broadcast without SO_BROADCAST: %v, want EACCES", err)
		}
		if err := pc.WriteTo([]byte("x"), nil); !errors.Is(err, ErrBadAddress) {
			t.Errorf("WriteTo(nil) = %v", err)
		}
		s.Close()
		if err := pc.WriteTo([]byte("x"), bcast); !errors.Is(err, ErrConnClosed) {
			t.Errorf("WriteTo after Close = %v", err)
		}
	}
}

// TestPacketConnsSendFirst: a program can send from the server's UDP socket before any
// datagram has arrived, through Server.PacketConns.
func TestPacketConnsSendFirst(t *testing.T) {
	for _, lb := range []LoadBalancing{RoundRobin, PerLoopListeners} {
		t.Run(lb.String(), func(t *testing.T) {
			s, err := NewServer(echoHandler(), WithLoops(2), WithLoadBalancing(lb))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.PacketConns(); len(got) != 0 {
				t.Fatalf("PacketConns before ListenPacket: %d", len(got))
			}
			addr, err := s.ListenPacket("udp", "127.0.0.1:0", udpEcho())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			pcs := s.PacketConns()
			if len(pcs) == 0 {
				t.Fatal("no PacketConn after ListenPacket")
			}
			for _, pc := range pcs {
				if pc.LocalAddr().String() != addr.String() {
					t.Fatalf("PacketConn bound to %v, ListenPacket said %v", pc.LocalAddr(), addr)
				}
			}
			peer, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			if err := pcs[0].WriteTo([]byte("hello first"), peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			peer.SetReadDeadline(testsupport.Deadline(5 * time.Second))
			n, from, err := peer.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello first" || from.String() != addr.String() {
				t.Fatalf("got %q from %v, %v", buf[:n], from, err)
			}
		})
	}
}
