package reactor

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// BenchmarkEcho measures echo round trips over loopback per backend and message size, with
// one client connection per parallel goroutine (b.RunParallel, GOMAXPROCS of them).
func BenchmarkEcho(b *testing.B) {
	for _, be := range backends(b) {
		for _, size := range []int{64, 4096} {
			b.Run(fmt.Sprintf("%s/%dB", be.Name, size), func(b *testing.B) {
				_, addr := startServer(b, echoHandler(), WithPoller(be.Name), WithLoops(1))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					msg := make([]byte, size)
					got := make([]byte, size)
					for pb.Next() {
						if _, err := c.Write(msg); err != nil {
							b.Error(err)
							return
						}
						if _, err := io.ReadFull(c, got); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkIdleConnMemory opens 10,000 connections from a child process (so the clients use
// neither this process's descriptors nor its heap), each doing one echo round trip so its
// buffers were borrowed and given back, and reports the server's heap growth per idle
// connection (runtime.MemStats.HeapInuse after GC).
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		s, addr := startServer(b, echoHandler(), WithPoller("epoll"), WithLoops(1), WithBacklog(n))
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=clients", "REACTOR_TEST_N="+strconv.Itoa(n), "REACTOR_TEST_ADDR="+addr)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "READY\n" {
			stdin.Close()
			cmd.Wait()
			b.Fatalf("clients: %q %v", line, err)
		}
		testsupport.Eventually(b, 30*time.Second, "every client connection accepted", func() bool {
			return s.Stats().ConnsOpen == n
		})
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/n, "heap-bytes/conn")
		b.ReportMetric(float64(s.Stats().ConnsOpen), "conns")
		stdin.Close()
		cmd.Wait()
		s.Close()
	}
}

// BenchmarkAccept measures a connection's life per backend — dial, one byte echoed, close —
// without a cap (the completion mode's multishot accept) and under a cap of 1,000 with
// shedding (one-shot accepts there: room for fewer than two listen queues, see
// ringIO.syncAccept), so that what bounding the kernel's accepts costs shows.
func BenchmarkAccept(b *testing.B) {
	for _, be := range backends(b) {
		for _, capped := range []bool{false, true} {
			name := be.Name + "/uncapped"
			opts := []Option{WithPoller(be.Name), WithLoops(1)}
			if capped {
				name = be.Name + "/cap1000"
				opts = append(opts, WithMaxConns(1000), WithShedding(true))
			}
			b.Run(name, func(b *testing.B) {
				_, addr := startServer(b, echoHandler(), opts...)
				b.ReportAllocs()
				b.ResetTimer()
				got := make([]byte, 1)
				for range b.N {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.Write(got); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, got); err != nil {
						b.Fatal(err)
					}
					c.Close()
				}
			})
		}
	}
}
