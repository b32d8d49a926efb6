package uring

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newRing opens a ring or skips the test with the reason when io_uring is unavailable here
// (a container's seccomp profile, the sysctl): those are exactly the cases New must report
// with ErrUnavailable, which TestUnavailable* check deliberately.
func newRing(t *testing.T, c Config) *Ring {
	t.Helper()
	r, err := New(c)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("io_uring unavailable on this machine: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func socketpair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// reap waits up to 5s for at least want completions and returns copies of all there are.
func reap(t *testing.T, r *Ring, want int) []CQE {
	t.Helper()
	var got []CQE
	dl := time.Now().Add(testsupport.Scale(5 * time.Second))
	for len(got) < want {
		left := time.Until(dl)
		if left <= 0 {
			t.Fatalf("got %d completions %+v, want %d", len(got), got, want)
		}
		if _, err := r.SubmitAndWait(1, left); err != nil && err != unix.ETIME && err != unix.EINTR {
			t.Fatal(err)
		}
		n := r.Ready()
		for i := uint32(0); i < n; i++ {
			got = append(got, *r.Peek(i))
		}
		r.Advance(n)
	}
	return got
}

func TestNopRoundTrip(t *testing.T) {
	r := newRing(t, Config{Entries: 8, Features: FeatNoDrop | FeatExtArg, Ops: []uint8{OpNop}})
	if r.SQEntries() != 8 || r.CQEntries() != 16 {
		t.Fatalf("queue sizes %d/%d, want 8/16", r.SQEntries(), r.CQEntries())
	}
	for round := 0; round < 3; round++ { // wraps nothing, but reuses slots
		for i := 0; i < 8; i++ {
			sqe := r.NextSQE()
			if sqe == nil {
				t.Fatalf("round %d: SQ full after %d SQEs", round, i)
			}
			sqe.PrepNop()
			sqe.UserData = uint64(round*100 + i)
		}
		if r.NextSQE() != nil {
			t.Fatal("NextSQE past the queue size")
		}
		if r.Pending() != 8 {
			t.Fatalf("Pending = %d", r.Pending())
		}
		got := reap(t, r, 8)
		for i, c := range got {
			if c.UserData != uint64(round*100+i) || c.Res != 0 {
				t.Fatalf("round %d completion %d = %+v", round, i, c)
			}
		}
		if r.Pending() != 0 {
			t.Fatalf("Pending after submit = %d", r.Pending())
		}
	}
}

func TestWaitTimeout(t *testing.T) {
	r := newRing(t, Config{Entries: 4, Features: FeatExtArg})
	for _, d := range []time.Duration{0, 2 * time.Millisecond, 30 * time.Millisecond} {
		start := time.Now()
		n, err := r.SubmitAndWait(1, d)
		el := time.Since(start)
		if d == 0 {
			if n != 0 || err != nil {
				t.Fatalf("SubmitAndWait(1, 0) = %d, %v; want 0, nil", n, err)
			}
			continue
		}
		if err != unix.ETIME {
			t.Fatalf("SubmitAndWait(1, %v) = %d, %v; want ETIME", d, n, err)
		}
		if el < d {
			t.Fatalf("SubmitAndWait(1, %v) returned after %v", d, el)
		}
	}
}

func TestProbe(t *testing.T) {
	r := newRing(t, Config{Entries: 4})
	for _, op := range []uint8{OpNop, OpPollAdd, OpPollRemove, OpAccept, OpRecv, OpSend} {
		if !r.Supports(op) {
			t.Errorf("kernel %s: probe says %s unsupported", kernelRelease(), OpName(op))
		}
	}
	if r.Supports(255) {
		t.Error("probe says opcode 255 is supported")
	}
}

func TestRequirementsMissing(t *testing.T) {
	if _, err := New(Config{Entries: 4}); errors.Is(err, ErrUnavailable) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"unknown feature", Config{Entries: 4, Features: 1 << 31}, "features 0x80000000"},
		{"unsupported opcode", Config{Entries: 4, Ops: []uint8{OpNop, 250}}, "lacks opcode 250"},
		{"unknown required flag", Config{Entries: 4, Flags: 1 << 30}, "rejects setup flags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.c)
			if err == nil {
				r.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v; want ErrUnavailable mentioning %q", err, tc.want)
			}
		})
	}
	// An optional flag the kernel does not know is dropped, not fatal.
	r, err := New(Config{Entries: 4, Optional: 1 << 30})
	if err != nil {
		t.Fatalf("unknown optional flag: %v", err)
	}
	defer r.Close()
	if r.Flags()&(1<<30) != 0 {
		t.Fatal("unknown optional flag reported as granted")
	}
	if _, err := New(Config{Entries: 0}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("New with 0 entries: %v; want a plain argument error", err)
	}
}

func TestSetupErrorText(t *testing.T) {
	tests := []struct {
		errno    unix.Errno
		disabled int
		want     string
		unavail  bool
	}{
		{unix.ENOSYS, -1, "built without io_uring, or a seccomp filter", true},
		{unix.EPERM, 2, "kernel.io_uring_disabled=2", true},
		{unix.EPERM, 1, "io_uring_group", true},
		{unix.EPERM, 0, "seccomp filter or container policy", true},
		{unix.EACCES, -1, "seccomp filter or container policy", true},
		{unix.EINVAL, 0, "rejects setup flags 0x3000", true},
		{unix.ENOMEM, 0, "cannot allocate memory", false},
	}
	for _, tc := range tests {
		err := setupError(tc.errno, 0x3000, tc.disabled)
		if errors.Is(err, ErrUnavailable) != tc.unavail || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("setupError(%v, disabled=%d) = %v; want unavailable=%v mentioning %q", tc.errno, tc.disabled, err, tc.unavail, tc.want)
		}
		if !errors.Is(err, tc.errno) && tc.errno != unix.EINVAL && tc.errno != unix.ENOSYS && tc.errno != unix.EPERM && tc.errno != unix.EACCES {
			t.Errorf("setupError(%v) does not wrap the errno", tc.errno)
		}
	}
}

// TestUnavailableUnderSeccomp installs a real seccomp filter that makes io_uring_setup fail,
// the way Docker's default profile does, and checks New's answer. Seccomp filters bind a
// thread for good, so the test runs on a locked thread that it then lets die (a goroutine
// that exits locked takes its thread with it).
func TestUnavailableUnderSeccomp(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("seccomp filter written for amd64/arm64 system call numbers, not %s", runtime.GOARCH)
	}
	for _, tc := range []struct {
		errno unix.Errno
		want  string
	}{
		{unix.EPERM, "seccomp filter or container policy"},
		{unix.ENOSYS, "built without io_uring, or a seccomp filter"},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				runtime.LockOSThread() // never unlocked: the filtered thread exits with the goroutine
				if err := testsupport.DenySyscall(unix.SYS_IO_URING_SETUP, tc.errno); err != nil {
					done <- err
					return
				}
				r, err := New(Config{Entries: 4})
				if err == nil {
					r.Close()
				}
				done <- err
			}()
			err := <-done
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EACCES) {
				t.Skipf("cannot install a seccomp filter here: %v", err)
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New under seccomp(%v) = %v; want ErrUnavailable mentioning %q", tc.errno, err, tc.want)
			}
		})
	}
}

func TestPollMultishot(t *testing.T) {
	r := newRing(t, Config{Entries: 8, Features: FeatNoDrop | FeatRsrcTags})
	a, b := socketpair(t)
	sqe := r.NextSQE()
	sqe.PrepPollAdd(a, unix.POLLIN, true)
	sqe.UserData = 1
	for i := 0; i < 3; i++ {
		if _, err := unix.Write(b, []byte("x")); err != nil {
			t.Fatal(err)
		}
		c := reap(t, r, 1)
		if len(c) != 1 || c[0].UserData != 1 || c[0].Res&unix.POLLIN == 0 || c[0].Flags&CQEFMore == 0 {
			t.Fatalf("wake-up %d: %+v; want one POLLIN completion with CQEFMore", i, c)
		}
	}
	sqe = r.NextSQE()
	sqe.PrepPollRemove(1)
	sqe.UserData = 2
	got := reap(t, r, 2)
	byUD := map[uint64]CQE{}
	for _, c := range got {
		byUD[c.UserData] = c
	}
	if c := byUD[1]; c.Res != -int32(unix.ECANCELED) || c.Flags&CQEFMore != 0 {
		t.Fatalf("removed poll ended with %+v; want -ECANCELED without CQEFMore", c)
	}
	if c := byUD[2]; c.Res != 0 {
		t.Fatalf("poll remove completed with %+v", c)
	}
}

func TestBufRingRecvMultishot(t *testing.T) {
	r := newRing(t, Config{Entries: 8, Ops: []uint8{OpRecv}})
	br, err := r.NewBufRing(7, 4, 64)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	a, b := socketpair(t)
	sqe := r.NextSQE()
	sqe.PrepRecvMultishot(a, br.Group())
	sqe.UserData = 9
	// 200 bytes into 64-byte buffers, written twice: every byte arrives, in order, each
	// completion naming its buffer, and recycling keeps four buffers enough.
	var want, got []byte
	for round := 0; round < 2; round++ {
		msg := []byte(strings.Repeat(string(rune('a'+round)), 200))
		want = append(want, msg...)
		if _, err := unix.Write(b, msg); err != nil {
			t.Fatal(err)
		}
		for len(got) < len(want) {
			for _, c := range reap(t, r, 1) {
				if c.UserData != 9 || c.Res <= 0 || c.Flags&CQEFBuffer == 0 || c.Flags&CQEFMore == 0 {
					t.Fatalf("completion %+v; want data in a provided buffer, more to come", c)
				}
				got = append(got, br.Buf(c.BufferID(), int(c.Res))...)
				br.Recycle(c.BufferID())
			}
			br.Publish()
		}
	}
	if string(got) != string(want) {
		t.Fatalf("received %q, want %q", got, want)
	}
	unix.Shutdown(b, unix.SHUT_WR)
	c := reap(t, r, 1)
	if c[0].Res != 0 || c[0].Flags&CQEFMore != 0 {
		t.Fatalf("EOF completion %+v; want Res 0 and the end of the request", c[0])
	}
}

// TestBufRingProvideOnDemand: a group with only part of its buffers provided uses only
// those; running out ends the receive with ENOBUFS (the bytes stay in the socket), and after
// Provide adds the rest a new receive takes every byte, in order, in buffers of the grown set.
func TestBufRingProvideOnDemand(t *testing.T) {
	r := newRing(t, Config{Entries: 8, Ops: []uint8{OpRecv}})
	br, err := r.NewBufRingAvail(7, 8, 64, 2)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	if _, err := r.NewBufRingAvail(8, 8, 64, 9); err == nil {
		t.Fatal("NewBufRingAvail accepted more available buffers than entries")
	}
	a, b := socketpair(t)
	want := []byte(strings.Repeat("0123456789abcdef", 20)) // 320 bytes: five buffers
	if _, err := unix.Write(b, want); err != nil {
		t.Fatal(err)
	}
	arm := func() {
		sqe := r.NextSQE()
		sqe.PrepRecvMultishot(a, br.Group())
		sqe.UserData = 9
	}
	arm()
	var got []byte
	ended := false
	for !ended {
		for _, c := range reap(t, r, 1) {
			switch {
			case c.Flags&CQEFBuffer != 0:
				if id := c.BufferID(); int(id) >= br.Provided() {
					t.Fatalf("buffer %d used, only %d provided", id, br.Provided())
				}
				got = append(got, br.Buf(c.BufferID(), int(c.Res))...) // not recycled: the group runs dry
			case c.Res == -int32(unix.ENOBUFS) && c.Flags&CQEFMore == 0:
				ended = true
			default:
				t.Fatalf("completion %+v; want data, then the end by ENOBUFS", c)
			}
		}
	}
	if len(got) != 2*64 {
		t.Fatalf("received %d bytes into 2 buffers of 64 before ENOBUFS", len(got))
	}
	if n := br.Provide(8); n != 8 || br.Provided() != 8 {
		t.Fatalf("Provide(8) = %d, Provided %d", n, br.Provided())
	}
	arm()
	for len(got) < len(want) {
		for _, c := range reap(t, r, 1) {
			if c.Res <= 0 || c.Flags&CQEFBuffer == 0 {
				t.Fatalf("completion %+v after Provide; want data", c)
			}
			got = append(got, br.Buf(c.BufferID(), int(c.Res))...)
		}
	}
	if string(got) != string(want) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

func TestOverflowKeepsCompletions(t *testing.T) {
	// 4 SQ slots, 8 CQ slots, 40 NOPs without reaping: FeatNoDrop keeps the 32 that do not
	// fit in the kernel, Overflowed says so, and reaping gets every one, in order.
	r := newRing(t, Config{Entries: 4, CQEntries: 8, Features: FeatNoDrop})
	for i := 0; i < 40; i++ {
		sqe := r.NextSQE()
		if sqe == nil {
			if _, err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			sqe = r.NextSQE()
		}
		sqe.PrepNop()
		sqe.UserData = uint64(i)
	}
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if !r.Overflowed() {
		t.Fatalf("40 completions in an 8-slot queue, but no overflow flag (ready %d)", r.Ready())
	}
	got := reap(t, r, 40)
	for i, c := range got {
		if c.UserData != uint64(i) {
			t.Fatalf("completion %d has user data %d", i, c.UserData)
		}
	}
	if r.Overflowed() || r.OverflowCount() != 0 {
		t.Fatalf("after reaping: overflowed %v, lost %d", r.Overflowed(), r.OverflowCount())
	}
}

func TestWaitEINTR(t *testing.T) {
	r := newRing(t, Config{Entries: 4, Features: FeatExtArg})
	tid := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		var err error
		for err == nil || err == unix.ETIME {
			_, err = r.SubmitAndWait(1, testsupport.Scale(5*time.Second))
		}
		done <- err
	}()
	target := <-tid
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != unix.EINTR {
				t.Fatalf("interrupted wait returned %v, want EINTR", err)
			}
			return
		case <-tick.C:
			if err := unix.Tgkill(os.Getpid(), target, unix.SIGURG); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestCloseTwice(t *testing.T) {
	r := newRing(t, Config{Entries: 4})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
