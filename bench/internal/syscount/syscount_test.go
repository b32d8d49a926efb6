package syscount

import (
	"errors"
	"os"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	out := `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 52.10    0.010000           5      2000           write
 40.00    0.008000           4      2000       100 read
  7.90    0.001000           1      1000           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.019000           3      5000       100 total
`
	s, err := Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 5000 || s.Calls["read"] != 2000 || s.Calls["epoll_wait"] != 1000 || len(s.Calls) != 3 {
		t.Fatalf("%+v", s)
	}
	if s.IOTotal() != 5000 {
		t.Fatalf("IOTotal %d", s.IOTotal())
	}
	s.Calls["futex"] = 7
	if s.IOTotal() != 5000 {
		t.Fatalf("futex counted as I/O: %d", s.IOTotal())
	}
	if _, err := Parse([]byte("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n")); !errors.Is(err, ErrFormat) {
		t.Fatalf("no table: %v", err)
	}
	if _, err := Parse([]byte("% time seconds usecs/call calls errors syscall\n 1.0 0.1 5 many read\n")); !errors.Is(err, ErrFormat) {
		t.Fatalf("bad count: %v", err)
	}
}

func TestCounterCountsThisProcess(t *testing.T) {
	c, err := OpenCounter(os.Getpid())
	if errors.Is(err, ErrNoTracepoints) {
		t.Skipf("cannot count here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all0, io0, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		if _, err := unix.Write(int(f.Fd()), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	all1, io1, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	// The counters' own reads are syscalls too (read is an I/O call): at least n, and not
	// wildly more.
	if d := io1 - io0; d < n || d > 10*n {
		t.Fatalf("%d writes counted as %d I/O calls", n, d)
	}
	if d := all1 - all0; d < n {
		t.Fatalf("%d writes counted as %d calls in all", n, d)
	}
}

// TestCounterReopensForThreadsCreatedMeanwhile makes a thread appear between the listing the
// counters are opened from and the one after (as when the Go runtime starts a thread while
// they open): the counters are opened again, so that every thread is counted.
func TestCounterReopensForThreadsCreatedMeanwhile(t *testing.T) {
	real, err := listThreads(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(real) < 2 {
		t.Skipf("this process has %d thread(s); the test hides one", len(real))
	}
	calls := 0
	orig := listThreads
	t.Cleanup(func() { listThreads = orig })
	listThreads = func(pid int) ([]int, error) {
		calls++
		if calls == 1 {
			return real[:len(real)-1], nil // the last thread "not created yet"
		}
		return real, nil
	}
	c, err := OpenCounter(os.Getpid())
	if errors.Is(err, ErrNoTracepoints) {
		t.Skipf("cannot count here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.attempts != 2 {
		t.Errorf("opened in %d attempts, want 2 (the first listing missed a thread)", c.attempts)
	}
	if len(c.all) != len(real) {
		t.Errorf("%d threads counted, want all %d", len(c.all), len(real))
	}

	// A process that never holds still is an error, not a partial count.
	calls = 0
	listThreads = func(pid int) ([]int, error) {
		calls++
		return append(slices.Clone(real[:1]), 1<<30+calls), nil // a new thread every listing
	}
	if c, err := OpenCounter(os.Getpid()); err == nil {
		c.Close()
		t.Fatal("a process creating threads during every opening: no error")
	}
}
