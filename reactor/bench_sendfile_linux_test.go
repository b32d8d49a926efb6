package reactor

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkSendFile measures files sent with SendFile per mode and size: clients (4
// connections) ask, the handler answers each request with the whole file, the client reads
// it. Besides ns/op it reports, per request: the process's CPU (clients included: they are
// the same code for every backend, so differences are the server's), the loop thread's CPU,
// the CPU of io_uring's io-wq workers (where the completion mode's splices run), and the
// system calls the loop thread made (a raw_syscalls:sys_enter tracepoint counter; -1 where
// perf events are not allowed). Modes: epoll (sendfile(2)), uring as shipped (splices from
// ringSpliceMin), and uring-splice-all (every file spliced through the ring).
//
//	go test ./reactor -run '^$' -bench SendFile -benchtime 3000x -count 3
func BenchmarkSendFile(b *testing.B) {
	modes := []struct {
		name, poller string
		spliceMin    int64
	}{
		{"epoll", "epoll", ringSpliceMin},
		{"uring", uringMode, ringSpliceMin}, // as shipped: sendfile(2) below ringSpliceMin
		{"uring-splice-all", uringMode, 0},  // every file through the ring
	}
	if _, err := CheckPoller(uringMode); err != nil {
		b.Logf("io_uring completion mode unavailable here, only epoll measured: %v", err)
		modes = modes[:1]
	}
	for _, m := range modes {
		for _, size := range []int{4 << 10, 64 << 10, 256 << 10, 512 << 10, 1 << 20, 4 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", m.name, size>>10), func(b *testing.B) {
				// Restored by a cleanup registered before the server's, so after it has stopped.
				old := ringSpliceMin
				b.Cleanup(func() { ringSpliceMin = old })
				ringSpliceMin = m.spliceMin
				benchSendFile(b, m.poller, size)
			})
		}
	}
}

func benchSendFile(b *testing.B, poller string, size int) {
	const conns = 4
	path, _ := randomFile(b, "bench", size)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		for range in {
			if err := c.SendFile(f, 0, int64(size)); err != nil {
				c.CloseNow()
			}
		}
		return len(in)
	}}
	s, addr := startServer(b, h, WithPoller(poller), WithLoops(1))
	l := s.loops[0]
	tidc := make(chan int, 1)
	if err := l.Post(func() { tidc <- unix.Gettid() }); err != nil {
		b.Fatal(err)
	}
	tid := <-tidc
	sys := syscallCounter(tid)
	if sys >= 0 {
		defer unix.Close(sys)
	}
	cls := make([]net.Conn, conns)
	for i := range cls {
		cls[i] = dial(b, "tcp", addr)
	}
	// Warm up: the page cache, the pipes, the io-wq workers.
	var wg sync.WaitGroup
	run := func(n int) {
		for i, c := range cls {
			k := n / conns
			if i < n%conns {
				k++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, size)
				for range k {
					if _, err := c.Write([]byte{'g'}); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	run(4 * conns)
	b.SetBytes(int64(size))
	b.ResetTimer()
	p0, l0, w0, s0 := cpuClock(0), cpuClock(tid), iowqCPU(), readCounter(sys)
	run(b.N)
	p1, l1, w1, s1 := cpuClock(0), cpuClock(tid), iowqCPU(), readCounter(sys)
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(p1-p0)/1e3/n, "proc-µs/op")
	b.ReportMetric(float64(l1-l0)/1e3/n, "loop-µs/op")
	b.ReportMetric(float64(w1-w0)/1e3/n, "iowq-µs/op")
	if sys >= 0 {
		b.ReportMetric(float64(s1-s0)/n, "loop-syscalls/op")
	} else {
		b.ReportMetric(-1, "loop-syscalls/op")
	}
}

// cpuClock returns the CPU time in ns of thread tid, or of the whole process for 0.
func cpuClock(tid int) int64 {
	id := int32(unix.CLOCK_PROCESS_CPUTIME_ID)
	if tid > 0 {
		id = int32(^tid)<<3 | 6 // MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// iowqCPU sums the CPU time of the process's io-wq worker threads (named iou-wrk-PID).
func iowqCPU() int64 {
	ents, _ := os.ReadDir("/proc/self/task")
	var sum int64
	for _, e := range ents {
		comm, _ := os.ReadFile("/proc/self/task/" + e.Name() + "/comm")
		if !strings.HasPrefix(string(comm), "iou-wrk") {
			continue
		}
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			sum += cpuClock(tid)
		}
	}
	return sum
}

// syscallCounter opens a counter of thread tid's system calls, or returns -1.
func syscallCounter(tid int) int {
	idb, err := os.ReadFile("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id")
	if err != nil {
		idb, err = os.ReadFile("/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id")
	}
	if err != nil {
		return -1
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(idb)), 10, 64)
	if err != nil {
		return -1
	}
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_TRACEPOINT, Config: id, Sample: 1}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return -1
	}
	return fd
}

func readCounter(fd int) uint64 {
	if fd < 0 {
		return 0
	}
	var b [8]byte
	if n, err := unix.Read(fd, b[:]); err != nil || n != 8 {
		return 0
	}
	return binary.NativeEndian.Uint64(b[:])
}
