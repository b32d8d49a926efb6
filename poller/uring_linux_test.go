package poller

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/internal/uring"
)

// The contract suite runs on uring like on every backend; these cover what only io_uring
// has: a completion queue that can overflow, requests bound to the thread that submitted
// them, and requests holding references to files.

func uringBackend(t *testing.T) Backend {
	t.Helper()
	b, err := Lookup("uring-poll")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openUringT(t *testing.T) Poller {
	t.Helper()
	return config{name: "uring-poll", b: uringBackend(t)}.open(t)
}

// TestUringOverflow shrinks the completion queue to 16 slots and makes 200 fds ready at once:
// the kernel keeps what does not fit (FEAT_NODROP) and ends multishot polls it cannot post
// for; every fd must still be reported, and still be watched afterwards.
func TestUringOverflow(t *testing.T) {
	saved := uringConfig
	uringConfig.Entries, uringConfig.CQEntries = 8, 16
	p := openUringT(t)
	uringConfig = saved

	const pairs = 200
	if nofile < 2*pairs+100 {
		t.Skipf("RLIMIT_NOFILE %d", nofile)
	}
	ends := make([][2]int, pairs)
	for i := range ends {
		ends[i][0], ends[i][1] = socketpair(t)
		if err := p.Add(ends[i][0], Readable|EdgeTriggered); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]Event, 8)
	if _, err := p.Wait(out, 0); err != nil { // submit the 200 polls
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		for _, e := range ends {
			write(t, e[1], "x")
		}
		got := map[int]bool{}
		dl := time.Now().Add(testsupport.Scale(5 * time.Second))
		for len(got) < pairs && time.Now().Before(dl) {
			n, err := p.Wait(out, time.Until(dl))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range out[:n] {
				got[e.FD] = true
				drain(t, e.FD)
			}
		}
		if len(got) != pairs {
			t.Fatalf("round %d: %d of %d ready fds reported", round, len(got), pairs)
		}
	}
}

// TestUringCancelledPollRearms cancels the poller's own requests behind its back, as some
// kernels do when the thread that submitted them exits (6.18 does not: its polls outlive the
// thread). A poll that ends with ECANCELED while still current must be re-armed, for the
// caller's fds and for the wake-up alike.
func TestUringCancelledPollRearms(t *testing.T) {
	p := openUringT(t)
	u := p.(*front).ops.(*uringOps)
	a, b := socketpair(t)
	if err := p.Add(a, Readable); err != nil {
		t.Fatal(err)
	}
	out := make([]Event, 4)
	if _, err := p.Wait(out, 0); err != nil { // submits the fd's and the wake-up's polls
		t.Fatal(err)
	}
	for _, target := range []uint64{ud(udPoll, u.fds[a].gen, a), ud(udWake, 0, 0)} {
		s := u.r.NextSQE()
		s.PrepCancel(target, 0)
		s.UserData = ud(udIgnore, 0, 0)
	}
	if _, err := u.r.Submit(); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Wait(out, 10*time.Millisecond); n != 0 || err != nil { // reaps the ECANCELED completions
		t.Fatalf("Wait after cancel = %d, %v", n, err)
	}
	if u.fds[a].armed || u.wakeLive {
		t.Fatalf("cancelled polls still marked live: fd %v, wake-up %v", u.fds[a].armed, u.wakeLive)
	}
	write(t, b, "x")
	waitFor(t, p, a, Readable)
	drain(t, a)
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Wait(out, -1)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testsupport.Scale(5 * time.Second)):
		t.Fatal("Wake lost after its poll was cancelled")
	}
}

// TestUringRemoveReleasesFile checks the consequence of poll requests holding files: an fd
// closed without Remove keeps its socket open, and Remove (submitted with the next Wait)
// lets it go, so the peer sees EOF.
func TestUringRemoveReleasesFile(t *testing.T) {
	p := openUringT(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable); err != nil {
		t.Fatal(err)
	}
	out := make([]Event, 4)
	if _, err := p.Wait(out, 0); err != nil {
		t.Fatal(err)
	}
	closeFD(t, a) // misuse: no Remove first
	buf := make([]byte, 8)
	if _, err := unix.Read(b, buf); err != unix.EAGAIN {
		t.Fatalf("peer read after close without Remove: %v; want EAGAIN (the ring still holds the socket)", err)
	}
	if err := p.Remove(a); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(out, 0); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, testsupport.Scale(5*time.Second), "EOF at the peer after Remove", func() bool {
		n, err := unix.Read(b, buf)
		return n == 0 && err == nil
	})
}

func TestUringUnavailableIsUnsupported(t *testing.T) {
	// A kernel requirement no kernel meets stands in for an old kernel: Open must say
	// ErrUnsupported (the caller's cue to fall back) and carry io_uring's reason.
	saved := uringConfig
	uringConfig.Features |= 1 << 31
	defer func() { uringConfig = saved }()
	p, err := uringBackend(t).Open()
	if err == nil {
		p.Close()
		t.Fatal("Open succeeded")
	}
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, uring.ErrUnavailable) {
		t.Fatalf("Open = %v; want ErrUnsupported wrapping uring.ErrUnavailable", err)
	}
}

// TestUringFlipsThenRemoveReleasesFile: two interest changes in one go (as a loop iteration
// makes when a flush turns Writable on and the drain turns it off again) queue the removal of
// a poll in the same submission as its arming. A poll that is ready when armed (Writable on a
// socket with room) has its completion work queued by then, and IORING_OP_POLL_REMOVE cannot
// take a request in that state (-EALREADY): the multishot poll stayed armed, holding the
// socket, so after Remove and close(2) the peer never saw EOF. Cancellation must win.
func TestUringFlipsThenRemoveReleasesFile(t *testing.T) {
	p := openUringT(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable); err != nil {
		t.Fatal(err)
	}
	out := make([]Event, 4)
	if _, err := p.Wait(out, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		for _, in := range []Events{Writable, 0, Writable, Readable} {
			if err := p.Modify(a, in); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.Wait(out, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Remove(a); err != nil {
		t.Fatal(err)
	}
	closeFD(t, a)
	if _, err := p.Wait(out, 0); err != nil { // submits the removal
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	testsupport.Eventually(t, testsupport.Scale(5*time.Second), "EOF at the peer after Remove and close", func() bool {
		n, err := unix.Read(b, buf)
		return n == 0 && err == nil
	})
}
