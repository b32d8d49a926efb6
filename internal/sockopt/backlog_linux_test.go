package sockopt

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// queued is the length of a listening socket's accept queue (TCP_INFO's unacked field).
func queued(t *testing.T, fd int) uint32 {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return info.Unacked
}

// TestHoldBacklog: while held, a listener queues no new connection (its SYN is dropped, so
// the client's connect does not complete) and keeps the ones queued before; released, it queues
// connections again, including the held client's, whose SYN is retransmitted.
func TestHoldBacklog(t *testing.T) {
	fd, sa := openLoopback(t, "tcp", Config{Backlog: 16})
	addr := ToAddr(TCP, sa).String()
	before, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	testsupport.Eventually(t, 0, "the first connection to be queued", func() bool { return queued(t, fd) == 1 })

	if err := HoldBacklog(fd); err != nil {
		t.Fatalf("HoldBacklog: %v", err)
	}
	// On loopback an unfiltered connect completes within microseconds; 300 ms without one is
	// the filter at work (a slow machine can only make this pass late, never fail wrongly).
	_, err = net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err == nil {
		t.Fatal("a connection completed while the backlog was held")
	}
	if n := queued(t, fd); n != 1 {
		t.Fatalf("accept queue holds %d while held, want the 1 queued before", n)
	}

	if err := ReleaseBacklog(fd); err != nil {
		t.Fatalf("ReleaseBacklog: %v", err)
	}
	after, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatalf("dial after ReleaseBacklog: %v", err)
	}
	defer after.Close()
	// The held connection is still there (queued before the hold), and accept gives it first.
	nfd, err := Accept(fd)
	if err != nil {
		t.Fatalf("accept after release: %v", err)
	}
	unix.Close(nfd)
}
