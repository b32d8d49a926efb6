package reactor

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestErrorsNameTheirSubject: every error about an address, a file or an option says which.
func TestErrorsNameTheirSubject(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tcp, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Without SO_REUSEADDR: Linux lets two UDP sockets that both set it share a port.
	s2, err := NewServer(echoHandler(), WithLoops(1), WithReuseAddr(false))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	udp, err := s2.ListenPacket("udp", "127.0.0.1:0", PacketHandlerFunc(func(*PacketConn, []byte, net.Addr) {}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	if _, err := s.Listen("unix", sock); err != nil {
		t.Fatal(err)
	}
	tooLong := "/" + strings.Repeat("p", 200)
	listen := func(network, addr string) func() error {
		return func() error { _, err := s.Listen(network, addr); return err }
	}
	tests := []struct {
		name string
		call func() error
		msg  string // the whole message, or a part of it when it ends in "..."
		is   error
	}{
		{"tcp in use", listen("tcp", tcp.String()), "listen tcp " + tcp.String() + ": bind: address already in use", unix.EADDRINUSE},
		{"udp in use", func() error {
			_, err := s2.ListenPacket("udp", udp.String(), PacketHandlerFunc(func(*PacketConn, []byte, net.Addr) {}))
			return err
		}, "listen udp " + udp.String() + ": bind: address already in use", unix.EADDRINUSE},
		{"unix socket file in use", listen("unix", sock), "listen unix " + sock + ": bind: address already in use", unix.EADDRINUSE},
		{"unix socket in a missing directory", listen("unix", filepath.Join(dir, "no", "s.sock")),
			"listen unix " + filepath.Join(dir, "no", "s.sock") + ": bind: no such file or directory", unix.ENOENT},
		{"address not on this host", listen("tcp", "192.0.2.1:80"), "listen tcp 192.0.2.1:80: bind: cannot assign requested address", unix.EADDRNOTAVAIL},
		{"bad port", listen("tcp", "127.0.0.1:99999"), "...127.0.0.1:99999...", ErrBadAddress},
		{"unix path too long", listen("unix", tooLong), "..." + tooLong + "...", ErrBadAddress},
		{"address of the wrong family", listen("tcp4", "[::1]:0"), "...::1...", ErrBadAddress},
		{"unsupported network", listen("ip", "127.0.0.1"), `reactor: unsupported network: "ip"`, ErrUnsupportedNetwork},
		{"option", func() error { _, err := NewServer(echoHandler(), WithWatermarks(100, 200)); return err },
			"reactor: invalid option: WithWatermarks(100, 200): want 0 <= low < high", ErrInvalidOption},
		{"poller name", func() error { _, err := NewServer(echoHandler(), WithPoller("nope")); return err }, `..."nope"...`, nil},
	}
	// A closed file handed to SendFile on a live connection.
	closedFile, err := os.Create(filepath.Join(dir, "gone.txt"))
	if err != nil {
		t.Fatal(err)
	}
	closedFile.Close()
	sendErr := make(chan error, 1)
	fs, err := NewServer(HandlerFuncs{Data: func(c *Conn, in []byte) int {
		sendErr <- c.SendFile(closedFile, 0, 1)
		c.Close()
		return len(in)
	}}, WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	faddr, err := fs.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Start(); err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name string
		call func() error
		msg  string
		is   error
	}{"sendfile of a closed file", func() error {
		c := dial(t, "tcp", faddr.String())
		c.Write([]byte("x"))
		return <-sendErr
	}, "sendfile " + closedFile.Name() + ": use of closed file", nil})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if part, ok := strings.CutPrefix(tc.msg, "..."); ok {
				part = strings.TrimSuffix(part, "...")
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %q", err, part)
				}
			} else if err.Error() != tc.msg {
				t.Errorf("error %q, want %q", err, tc.msg)
			}
			var oe *net.OpError
			if strings.HasPrefix(tc.msg, "listen ") && !errors.As(err, &oe) {
				t.Errorf("%v is not a *net.OpError", err)
			}
		})
	}
}
