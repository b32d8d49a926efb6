package syscount

import (
	"errors"
	"os"
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
