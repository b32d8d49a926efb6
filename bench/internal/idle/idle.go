// Package idle measures what an idle keep-alive connection costs a server: it opens N
// connections that each complete one request and then stay open doing nothing, and divides
// the growth of the server's resident memory (and, for Go servers, of its heap and stacks) by N.
package idle

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/loadgen"
	"github.com/reactord/reactord/bench/internal/procstat"
)

// ErrBadConfig is returned for a configuration that cannot run.
var ErrBadConfig = errors.New("idle: bad config")

// Result is one server's idle-connection cost.
type Result struct {
	Label string `json:"label"`
	Conns int    `json:"conns"`
	// RSSBefore and RSSAfter are VmRSS with one warm connection and with Conns more.
	RSSBefore  int64   `json:"rss_before"`
	RSSAfter   int64   `json:"rss_after"`
	RSSPerConn float64 `json:"rss_per_conn"`
	// GoPerConn is the growth of heap in use plus stacks in use per connection, after a GC;
	// 0 for a server that is not a Go program.
	GoPerConn  float64 `json:"go_heap_stack_per_conn"`
	Goroutines uint64  `json:"goroutines_after"`
}

// Measure opens n idle keep-alive connections to addr and reports the growth of process
// pid's memory. stats, if not nil, asks the server for its Go runtime figures (after a GC).
// With tlsCfg the connections speak HTTPS (a full handshake each). The caller raises
// RLIMIT_NOFILE above n first.
func Measure(ctx context.Context, label, addr string, pid, n int, stats func() (child.RuntimeStats, error), tlsCfg *tls.Config) (Result, error) {
	if n < 1 || addr == "" || pid <= 0 {
		return Result{}, fmt.Errorf("%w: n %d addr %q pid %d", ErrBadConfig, n, addr, pid)
	}
	res := Result{Label: label, Conns: n}
	req := loadgen.DefaultRequest(addr)

	warm, err := openIdle(ctx, addr, req, 1, tlsCfg)
	if err != nil {
		return res, err
	}
	defer closeAll(warm)
	before, err := goMem(stats)
	if err != nil {
		return res, err
	}
	if res.RSSBefore, err = procstat.ReadRSS(pid); err != nil {
		return res, err
	}
	conns, err := openIdle(ctx, addr, req, n, tlsCfg)
	defer closeAll(conns)
	if err != nil {
		return res, err
	}
	// Let the server finish the last writes and go back to waiting before sampling.
	settle(pid)
	after, err := goMem(stats)
	if err != nil {
		return res, err
	}
	if res.RSSAfter, err = procstat.ReadRSS(pid); err != nil {
		return res, err
	}
	res.RSSPerConn = float64(res.RSSAfter-res.RSSBefore) / float64(n)
	if stats != nil {
		res.GoPerConn = (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / float64(n)
		res.Goroutines = after.Goroutines
	}
	return res, nil
}

func goMem(stats func() (child.RuntimeStats, error)) (child.RuntimeStats, error) {
	if stats == nil {
		return child.RuntimeStats{}, nil
	}
	return stats()
}

// settle waits until the server's CPU time stops growing (its last writes done), at most 2s.
func settle(pid int) {
	deadline := time.Now().Add(2 * time.Second)
	last, _ := procstat.ReadCPU(pid)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		cur, err := procstat.ReadCPU(pid)
		if err != nil || cur == last {
			return
		}
		last = cur
	}
}

// openIdle opens n connections, each completing one request, with 64 dialers at a time.
func openIdle(ctx context.Context, addr string, req []byte, n int, tlsCfg *tls.Config) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range min(64, n) {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for i := range next {
				c, err := oneRequest(ctx, addr, req, buf, tlsCfg)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("idle: connection %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return conns, first
}

func oneRequest(ctx context.Context, addr string, req, buf []byte, tlsCfg *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if tlsCfg != nil {
		c = tls.Client(c, tlsCfg)
	}
	if _, err := c.Write(req); err != nil {
		_ = c.Close()
		return nil, err
	}
	have := 0
	for {
		r, err := c.Read(buf[have:])
		have += r
		if resp, n, perr := loadgen.ParseResponse(buf[:have]); perr != nil {
			_ = c.Close()
			return nil, perr
		} else if n > 0 {
			if resp.Status != 200 || resp.Close {
				_ = c.Close()
				return nil, fmt.Errorf("status %d close %v", resp.Status, resp.Close)
			}
			_ = c.SetDeadline(time.Time{})
			return c, nil
		}
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		if have == len(buf) {
			_ = c.Close()
			return nil, loadgen.ErrHeaderTooLarge
		}
	}
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		if c != nil {
			_ = c.Close()
		}
	}
}

// CryptoTLSPerConn measures what crypto/tls itself keeps for each established server
// connection, with no server around it: n server-side tls.Conns over in-memory pipes, each
// after a full handshake and one request read, minus the pipes. It runs in this process
// (after a GC, heap in use), and is the "what crypto/tls holds" part of a TLS server's
// idle-connection cost.
func CryptoTLSPerConn(n int, server, client *tls.Config) (float64, error) {
	if n < 1 || server == nil || client == nil {
		return 0, fmt.Errorf("%w: n %d", ErrBadConfig, n)
	}
	req := loadgen.DefaultRequest("127.0.0.1")
	pipes := make([]net.Conn, 0, 2*n)
	for range n {
		a, b := net.Pipe()
		pipes = append(pipes, a, b)
	}
	h1 := heapInuse() // the pipes
	conns := make([]*tls.Conn, n)
	buf := make([]byte, 4096)
	for i := range conns {
		s := tls.Server(pipes[2*i], server)
		errc := make(chan error, 1)
		go func() {
			c := tls.Client(pipes[2*i+1], client)
			if err := c.Handshake(); err != nil {
				errc <- err
				return
			}
			_, err := c.Write(req)
			errc <- err
		}()
		if err := s.Handshake(); err != nil {
			return 0, err
		}
		if _, err := s.Read(buf); err != nil {
			return 0, err
		}
		if err := <-errc; err != nil {
			return 0, err
		}
		conns[i] = s
	}
	h2 := heapInuse()
	runtime.KeepAlive(conns)
	runtime.KeepAlive(pipes)
	for _, p := range pipes {
		_ = p.Close()
	}
	return (float64(h2) - float64(h1)) / float64(n), nil
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
