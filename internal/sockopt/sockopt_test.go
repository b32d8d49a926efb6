package sockopt

import (
	"errors"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		network, addr string
		kind          Kind
		family        int
		v6only        bool
		err           error
	}{
		{"tcp", "127.0.0.1:80", TCP, unix.AF_INET, false, nil},
		{"tcp4", ":0", TCP, unix.AF_INET, false, nil},
		{"tcp6", "[::1]:0", TCP, unix.AF_INET6, true, nil},
		{"udp", "127.0.0.1:53", UDP, unix.AF_INET, false, nil},
		{"udp4", "0.0.0.0:0", UDP, unix.AF_INET, false, nil},
		{"unix", "/tmp/x.sock", Unix, unix.AF_UNIX, false, nil},
		{"unix", "", 0, 0, false, ErrAddress},
		{"tcp4", "[::1]:0", 0, 0, false, ErrAddress},
		{"tcp", "1.2.3.4:70000", 0, 0, false, ErrAddress},
		{"sctp", ":0", 0, 0, false, ErrNetwork},
	}
	for _, tc := range tests {
		ep, err := Resolve(tc.network, tc.addr)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Resolve(%q, %q) err = %v, want %v", tc.network, tc.addr, err, tc.err)
			}
			continue
		}
		if err != nil || ep.Kind != tc.kind || ep.Family != tc.family || ep.V6Only != tc.v6only {
			t.Errorf("Resolve(%q, %q) = %+v, %v", tc.network, tc.addr, ep, err)
		}
	}
}

func TestAddrConversions(t *testing.T) {
	tests := []struct {
		addr   net.Addr
		family int
		want   string
		port   int
	}{
		{&net.UDPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 53}, unix.AF_INET, "10.1.2.3:53", 53},
		{&net.UDPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 53}, unix.AF_INET6, "[::ffff:10.1.2.3]:53", 53},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8}, unix.AF_INET6, "[::1]:8", 8},
	}
	for _, tc := range tests {
		sa, err := FromAddr(tc.addr, tc.family)
		if err != nil {
			t.Fatalf("FromAddr(%v): %v", tc.addr, err)
		}
		// net prints an IPv4-mapped address as plain IPv4; compare through netip instead.
		back := ToAddr(UDP, sa).(*net.UDPAddr)
		if got := back.AddrPort().String(); got != tc.want && back.String() != tc.want {
			t.Errorf("round trip %v -> %v, want %s", tc.addr, got, tc.want)
		}
		if Port(sa) != tc.port {
			t.Errorf("Port(%v) = %d, want %d", sa, Port(sa), tc.port)
		}
	}
	if _, err := FromAddr(nil, unix.AF_INET); !errors.Is(err, ErrAddress) {
		t.Errorf("FromAddr(nil) = %v", err)
	}
	if _, err := FromAddr(&net.UDPAddr{IP: net.IPv6loopback, Port: 1}, unix.AF_INET); !errors.Is(err, ErrAddress) {
		t.Errorf("IPv6 to AF_INET = %v", err)
	}
	if a := ToAddr(Unix, &unix.SockaddrUnix{Name: "/x"}); a.String() != "/x" || a.Network() != "unix" {
		t.Errorf("unix ToAddr = %v", a)
	}
}

func TestOpenReleasesOnError(t *testing.T) {
	ep, err := Resolve("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := Open(ep, Config{ReuseAddr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sa, _ := unix.Getsockname(fd)
	// Same port without SO_REUSEPORT: bind fails and the new socket must be closed.
	if _, err := Open(ep.WithPort(Port(sa)), Config{}); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("second bind = %v, want EADDRINUSE", err)
	}
}
