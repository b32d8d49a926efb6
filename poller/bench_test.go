package poller

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkWait measures one Wait with one active fd among N watched ones, the shape of
// libevent's bench.c: N/2 socket pairs with both ends watched for Readable; before each Wait
// one byte is written to one pair, after it the byte is read back. epoll's (and kqueue's) cost
// should not grow with N; poll's and select's grows linearly, since the kernel scans every
// watched fd on every call.
//
// Besides wall time it reports cpu-ns/op, the CPU time (user+system) of the benchmarking
// thread per operation: on a machine shared with other work wall time includes waiting for a
// CPU, CPU time mostly does not, so compare that one when the load is high.
func BenchmarkWait(b *testing.B) {
	for _, be := range Backends() {
		b.Run(be.Name, func(b *testing.B) {
			for _, n := range []int{100, 1000, 10000} {
				b.Run(fmt.Sprintf("fds=%d", n), func(b *testing.B) {
					benchWait(b, be, n)
				})
			}
		})
	}
}

func benchWait(b *testing.B, be Backend, nfds int) {
	if need := uint64(nfds) + 64; nofile < need {
		b.Skipf("RLIMIT_NOFILE is %d, need %d", nofile, need)
	}
	p, err := be.Open()
	skipUnsupported(b, err)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	pairs := make([][2]int, nfds/2)
	defer func() {
		for _, pr := range pairs {
			if pr != [2]int{} {
				p.Remove(pr[0])
				p.Remove(pr[1])
				unix.Close(pr[0])
				unix.Close(pr[1])
			}
		}
	}()
	for i := range pairs {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			b.Fatalf("socketpair #%d: %v", i, err)
		}
		pairs[i] = [2]int{fds[0], fds[1]}
		for _, fd := range fds {
			if err := p.Add(fd, Readable); err != nil {
				b.Fatalf("add fd %d: %v", fd, err)
			}
		}
	}
	active := pairs[len(pairs)/2]
	one, buf := []byte{1}, make([]byte, 1)
	out := make([]Event, 64)
	runtime.LockOSThread() // so the thread's CPU time is the loop's
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Write(active[1], one); err != nil {
			b.Fatal(err)
		}
		n, err := p.Wait(out, -1)
		if err != nil || n != 1 || out[0].FD != active[0] {
			b.Fatalf("Wait = %d %v %v", n, out[:n], err)
		}
		if _, err := unix.Read(active[0], buf); err != nil {
			b.Fatal(err)
		}
	}
	if cpu := threadCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}

// threadCPU returns the calling thread's CPU time (user+system) in nanoseconds, or 0 where
// there is no RUSAGE_THREAD.
func threadCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return unix.TimevalToNsec(ru.Utime) + unix.TimevalToNsec(ru.Stime)
}
