package sockopt

import (
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAcceptPeer accepts IPv4, IPv6 and IPv4-on-a-dual-stack-listener connections and checks
// that the peer reported is the client's own local address (IPv4 unmapped), and that the
// descriptor is non-blocking.
func TestAcceptPeer(t *testing.T) {
	tests := []struct {
		name, network, listen, dial string
		needV6                      bool
	}{
		{"ipv4", "tcp4", "127.0.0.1:0", "127.0.0.1", false},
		{"ipv6", "tcp6", "[::1]:0", "::1", true},
		{"ipv4 on dual stack", "tcp", "[::]:0", "127.0.0.1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needV6 && !HaveIPv6() {
				t.Skip("no IPv6")
			}
			ep, err := Resolve(tc.network, tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			lfd, err := Open(ep, Config{ReuseAddr: true})
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(lfd)
			sa, _ := unix.Getsockname(lfd)
			cl, err := net.DialTimeout("tcp", net.JoinHostPort(tc.dial, strconv.Itoa(Port(sa))), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			// Wait for the listener to be readable rather than polling it on a timer.
			pfd := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
			if n, err := unix.Poll(pfd, 5000); n != 1 || err != nil {
				t.Fatalf("listener not readable: %d, %v", n, err)
			}
			fd, peer, err := AcceptPeer(lfd)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			want := cl.LocalAddr().(*net.TCPAddr).AddrPort()
			want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
			if peer.Addr != want || peer.Scope != 0 {
				t.Fatalf("peer %v scope %d, want %v", peer.Addr, peer.Scope, want)
			}
			// getpeername on the accepted socket names the same peer (the completion mode
			// reads it so, its accept reporting none).
			if got, err := PeerOf(fd); err != nil || got != peer {
				t.Fatalf("PeerOf = %v scope %d, %v; accept said %v", got.Addr, got.Scope, err, peer.Addr)
			}
			fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			if err != nil || fl&unix.O_NONBLOCK == 0 {
				t.Fatalf("accepted fd flags %#x, %v: not non-blocking", fl, err)
			}
		})
	}
	if _, _, err := AcceptPeer(-1); err != unix.EBADF {
		t.Fatalf("AcceptPeer(-1) = %v", err)
	}
}

// TestPeerOfNotIP: PeerOf of a socket that has no IP peer — a Unix socket, a listening TCP
// socket, no socket at all — reports the zero Peer, with the kernel's error where it has one.
func TestPeerOfNotIP(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	ep, _ := Resolve("tcp4", "127.0.0.1:0")
	lfd, err := Open(ep, Config{ReuseAddr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	var pipe [2]int
	if err := unix.Pipe(pipe[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	tests := []struct {
		name string
		fd   int
		err  error
	}{
		{"unix socket", pair[0], nil},
		{"listening socket", lfd, unix.ENOTCONN},
		{"pipe", pipe[0], unix.ENOTSOCK},
		{"negative", -1, unix.EBADF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PeerOf(tc.fd)
			if err != tc.err || p != (Peer{}) {
				t.Fatalf("PeerOf = %+v, %v; want the zero Peer, %v", p, err, tc.err)
			}
		})
	}
}

// TestAcceptPeerAllocs: on Linux accepting (an empty backlog here, and a connection) costs no
// allocation.
func TestAcceptPeerAllocs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the allocation-free path is Linux's")
	}
	ep, _ := Resolve("tcp4", "127.0.0.1:0")
	lfd, err := Open(ep, Config{ReuseAddr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if a := testing.AllocsPerRun(100, func() { _, _, _ = AcceptPeer(lfd) }); a != 0 {
		t.Fatalf("AcceptPeer allocates %.1f times on an empty backlog", a)
	}
	// Two connections in the backlog: AllocsPerRun(1, f) runs f twice.
	sa, _ := unix.Getsockname(lfd)
	for range 2 {
		cl, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(Port(sa)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
	}
	fds := make([]int, 0, 2)
	a := testing.AllocsPerRun(1, func() {
		if fd, _, err := AcceptPeer(lfd); err == nil {
			fds = append(fds, fd)
		}
	})
	for _, fd := range fds {
		unix.Close(fd)
	}
	if len(fds) != 2 {
		t.Fatalf("accepted %d of 2 connections", len(fds))
	}
	if a != 0 {
		t.Fatalf("AcceptPeer allocates %.1f times per connection", a)
	}
}
