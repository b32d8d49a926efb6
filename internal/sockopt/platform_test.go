package sockopt

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// checkFlags fails unless fd is non-blocking and close-on-exec.
func checkFlags(t *testing.T, what string, fd int) {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatalf("%s: F_GETFL: %v", what, err)
	}
	if fl&unix.O_NONBLOCK == 0 {
		t.Errorf("%s: O_NONBLOCK not set (flags %#x)", what, fl)
	}
	fd2, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("%s: F_GETFD: %v", what, err)
	}
	if fd2&unix.FD_CLOEXEC == 0 {
		t.Errorf("%s: FD_CLOEXEC not set", what)
	}
}

func openLoopback(t *testing.T, network string, cfg Config) (int, unix.Sockaddr) {
	t.Helper()
	ep, err := Resolve(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := Open(ep, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", network, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa
}

func TestOpenAndAcceptFlags(t *testing.T) {
	for _, network := range []string{"tcp4", "udp4"} {
		fd, _ := openLoopback(t, network, Config{})
		checkFlags(t, "Open("+network+")", fd)
	}
	ln, sa := openLoopback(t, "tcp4", Config{})
	if _, err := Accept(ln); err != unix.EAGAIN {
		t.Fatalf("Accept on an empty backlog = %v, want EAGAIN", err)
	}
	c, err := net.DialTimeout("tcp4", ToAddr(TCP, sa).String(), testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The handshake completes in the kernel; poll until the connection is in the backlog.
	var fd int
	testsupport.Eventually(t, 5*time.Second, "the connection in the backlog", func() bool {
		fd, err = Accept(ln)
		return err != unix.EAGAIN
	})
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer unix.Close(fd)
	checkFlags(t, "Accept", fd)
	if _, err := Accept(-1); !errors.Is(err, unix.EBADF) {
		t.Fatalf("Accept(-1) = %v, want EBADF", err)
	}
}

func TestSetKeepAlive(t *testing.T) {
	tests := []struct {
		d        time.Duration
		on       bool
		wantSecs int
	}{
		{0, false, 0},
		{-time.Second, false, 0},
		{30 * time.Second, true, 30},
		{1500 * time.Millisecond, true, 2}, // rounded up to whole seconds
	}
	for _, tc := range tests {
		fd, err := newSocket(unix.AF_INET, unix.SOCK_STREAM)
		if err != nil {
			t.Fatal(err)
		}
		if err := SetKeepAlive(fd, tc.d); err != nil {
			unix.Close(fd)
			t.Fatalf("SetKeepAlive(%v): %v", tc.d, err)
		}
		on, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		idle, _ := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, keepIdleOpt)
		intvl, _ := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		unix.Close(fd)
		if (on != 0) != tc.on {
			t.Errorf("SetKeepAlive(%v): SO_KEEPALIVE = %d, want on=%v", tc.d, on, tc.on)
		}
		if tc.on && (idle != tc.wantSecs || intvl != tc.wantSecs) {
			t.Errorf("SetKeepAlive(%v): %s = %d, TCP_KEEPINTVL = %d, want %d", tc.d, keepIdleName, idle, intvl, tc.wantSecs)
		}
	}
}

// TestReusePortSharesPort binds a second socket to a port taken with Config.ReusePort, and
// checks the option the platform uses (SO_REUSEPORT_LB on FreeBSD) is the one set.
func TestReusePortSharesPort(t *testing.T) {
	for _, network := range []string{"tcp4", "udp4"} {
		fd, sa := openLoopback(t, network, Config{ReusePort: true})
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, reusePortOpt); err != nil || v == 0 {
			t.Fatalf("%s: %s = %d, %v; want set", network, reusePortName, v, err)
		}
		ep, _ := Resolve(network, "127.0.0.1:0")
		second, err := Open(ep.WithPort(Port(sa)), Config{ReusePort: true})
		if err != nil {
			t.Fatalf("%s: second socket on port %d with %s: %v", network, Port(sa), reusePortName, err)
		}
		unix.Close(second)
	}
}

func TestResolveUnixPathLimit(t *testing.T) {
	tests := []struct {
		n   int
		err error
	}{
		{1, nil},
		{maxUnixPath - 1, nil}, // the longest path sun_path holds with its NUL
		{maxUnixPath, ErrAddress},
	}
	for _, tc := range tests {
		path := "/" + strings.Repeat("s", tc.n-1)
		_, err := Resolve("unix", path)
		if !errors.Is(err, tc.err) {
			t.Errorf("Resolve(unix, %d-byte path) = %v, want %v", tc.n, err, tc.err)
		}
	}
}
