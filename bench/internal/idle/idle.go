// Package idle measures what an idle keep-alive connection costs a server: it opens connections
// that each complete one request and then stay open doing nothing, in steps up to the largest
// N, and relates the growth of the server's resident memory (and, for Go servers, of its heap
// and stacks) to the number of connections — per connection at each step, and as the slope of a
// least-squares line through the steps, which leaves out fixed costs such as the Go runtime's
// minimum heap.
//
// Linux gives one source address about 28,000 ephemeral ports toward one destination, so
// connections come from several loopback source addresses (127.0.0.0/8 is all local), a fresh
// set for every measurement, PerSource connections each, and are closed with a reset so that no
// TIME_WAIT is left behind for the next run.
package idle

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/loadgen"
	"github.com/reactord/reactord/bench/internal/procstat"
)

// ErrBadConfig is returned for a configuration that cannot run.
var ErrBadConfig = errors.New("idle: bad config")

// DefaultPerSource is the default number of connections per loopback source address: below
// the 28,232 ports of Linux's default ephemeral range, with room for other users of the range.
const DefaultPerSource = 20000

// Point is the server's memory with Conns idle connections open.
type Point struct {
	Conns int   `json:"conns"`
	RSS   int64 `json:"rss"`
	// GoHeapStack is heap in use plus stacks in use after a GC; 0 for a server that is not a
	// Go program.
	GoHeapStack uint64 `json:"go_heap_stack,omitempty"`
}

// Result is one server's idle-connection cost.
type Result struct {
	Label string `json:"label"`
	Conns int    `json:"conns"` // the largest N
	// RSSBefore and RSSAfter are VmRSS with one warm connection and with Conns more.
	RSSBefore  int64   `json:"rss_before"`
	RSSAfter   int64   `json:"rss_after"`
	RSSPerConn float64 `json:"rss_per_conn"` // (RSSAfter - RSSBefore) / Conns
	// GoPerConn is the growth of heap in use plus stacks in use per connection, after a GC;
	// 0 for a server that is not a Go program.
	GoPerConn  float64 `json:"go_heap_stack_per_conn"`
	Goroutines uint64  `json:"goroutines_after"`
	// Points has one entry per step, Points[0] being the warm baseline (Conns 0).
	Points []Point `json:"points"`
	// RSSSlope and GoSlope are bytes per connection: the slope of the least-squares line
	// through the steps (not the baseline). With one step they equal the per-connection
	// growth. GoSlope is 0 for a server that is not a Go program.
	RSSSlope float64 `json:"rss_slope"`
	GoSlope  float64 `json:"go_slope"`
}

// Options configures MeasureSteps.
type Options struct {
	Label string
	Addr  string
	PID   int
	// Steps are the connection counts to sample at, ascending and positive; connections
	// accumulate (the step to 20,000 adds 10,000 to the step to 10,000's).
	Steps []int
	// Stats, if not nil, asks the server for its Go runtime figures (after a GC).
	Stats func() (child.RuntimeStats, error)
	// PerSource is the number of connections per loopback source address; 0 means
	// DefaultPerSource.
	PerSource int
	// TLS, if not nil, makes the connections speak HTTPS (a full handshake each).
	TLS *tls.Config
}

// Measure opens n idle keep-alive connections to addr and reports the growth of process
// pid's memory. stats, if not nil, asks the server for its Go runtime figures (after a GC).
// With tlsCfg the connections speak HTTPS (a full handshake each). The caller raises
// RLIMIT_NOFILE above n first.
func Measure(ctx context.Context, label, addr string, pid, n int, stats func() (child.RuntimeStats, error), tlsCfg *tls.Config) (Result, error) {
	return MeasureSteps(ctx, Options{Label: label, Addr: addr, PID: pid, Steps: []int{n}, Stats: stats, TLS: tlsCfg})
}

// MeasureSteps opens idle keep-alive connections to o.Addr up to each of o.Steps in turn and
// samples process o.PID's memory at each. The caller raises RLIMIT_NOFILE above the last step.
func MeasureSteps(ctx context.Context, o Options) (Result, error) {
	if len(o.Steps) == 0 || o.Addr == "" || o.PID <= 0 || o.PerSource < 0 {
		return Result{}, fmt.Errorf("%w: steps %v addr %q pid %d", ErrBadConfig, o.Steps, o.Addr, o.PID)
	}
	for i, n := range o.Steps {
		if n < 1 || i > 0 && n <= o.Steps[i-1] {
			return Result{}, fmt.Errorf("%w: steps %v must be positive and ascending", ErrBadConfig, o.Steps)
		}
	}
	if o.PerSource == 0 {
		o.PerSource = DefaultPerSource
	}
	last := o.Steps[len(o.Steps)-1]
	res := Result{Label: o.Label, Conns: last}
	req := loadgen.DefaultRequest(o.Addr)
	d := newDialer(o.Addr, o.PerSource, last+1, o.TLS)

	warm := make([]net.Conn, 1)
	if err := d.open(ctx, req, warm); err != nil {
		return res, err
	}
	defer closeAll(warm)
	base, err := sample(o.PID, 0, o.Stats)
	if err != nil {
		return res, err
	}
	res.Points = append(res.Points, base)
	conns := make([]net.Conn, last)
	defer closeAll(conns)
	have := 0
	var after child.RuntimeStats
	for _, n := range o.Steps {
		if err := d.open(ctx, req, conns[have:n]); err != nil {
			return res, err
		}
		have = n
		// Let the server finish the last writes and go back to waiting before sampling.
		settle(o.PID)
		p, err := sample(o.PID, n, o.Stats)
		if err != nil {
			return res, err
		}
		res.Points = append(res.Points, p)
		if o.Stats != nil && n == last {
			if after, err = o.Stats(); err != nil {
				return res, err
			}
		}
	}
	end := res.Points[len(res.Points)-1]
	res.RSSBefore, res.RSSAfter = base.RSS, end.RSS
	res.RSSPerConn = float64(end.RSS-base.RSS) / float64(last)
	steps := res.Points[1:]
	res.RSSSlope = slope(steps, base, func(p Point) float64 { return float64(p.RSS) })
	if o.Stats != nil {
		res.GoPerConn = (float64(end.GoHeapStack) - float64(base.GoHeapStack)) / float64(last)
		res.GoSlope = slope(steps, base, func(p Point) float64 { return float64(p.GoHeapStack) })
		res.Goroutines = after.Goroutines
	}
	return res, nil
}

// sample reads the server's memory with n connections open. The Go figures come first: they
// cost a GC, and a GC never lowers RSS at once (freed pages go back to the OS later, through
// the scavenger), so RSS read after it is not flattered.
func sample(pid, n int, stats func() (child.RuntimeStats, error)) (Point, error) {
	p := Point{Conns: n}
	if stats != nil {
		st, err := stats()
		if err != nil {
			return p, err
		}
		p.GoHeapStack = st.HeapInuse + st.StackInuse
	}
	rss, err := procstat.ReadRSS(pid)
	if err != nil {
		return p, err
	}
	p.RSS = rss
	return p, nil
}

// slope fits y = a + b·N through pts by least squares and returns b. With a single point it
// is the growth from base per connection.
func slope(pts []Point, base Point, y func(Point) float64) float64 {
	if len(pts) == 1 {
		return (y(pts[0]) - y(base)) / float64(pts[0].Conns)
	}
	var sx, sy, sxx, sxy float64
	for _, p := range pts {
		x := float64(p.Conns)
		sx += x
		sy += y(p)
		sxx += x * x
		sxy += x * y(p)
	}
	n := float64(len(pts))
	den := n*sxx - sx*sx
	if den == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / den
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

// nextSource numbers the loopback source addresses handed out in this process, so that every
// measurement starts on addresses no earlier one used.
var nextSource atomic.Int64

// sourceAddr returns loopback address number k (from 0): 127.x.y.z, z in 1..254.
func sourceAddr(k int64) net.IP {
	return net.IPv4(127, byte(k/(254*256)%256), byte(k/254%256), byte(1+k%254))
}

// dialer hands out connection numbers and the source address each one uses.
type dialer struct {
	addr      string
	perSource int
	base      int64 // first source address number of this measurement
	next      atomic.Int64
	tls       *tls.Config // nil: plain HTTP
}

func newDialer(addr string, perSource, total int, tlsCfg *tls.Config) *dialer {
	n := int64((total + perSource - 1) / perSource)
	return &dialer{addr: addr, perSource: perSource, base: nextSource.Add(n) - n, tls: tlsCfg}
}

// open fills dst with connections that each completed one request, 64 dialling at a time.
func (d *dialer) open(ctx context.Context, req []byte, dst []net.Conn) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range min(64, len(dst)) {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for i := range next {
				k := d.next.Add(1) - 1
				src := sourceAddr(d.base + k/int64(d.perSource))
				c, err := oneRequest(ctx, d.addr, src, req, buf, d.tls)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("idle: connection %d (from %v): %w", k, src, err)
					}
					mu.Unlock()
					continue
				}
				dst[i] = c
			}
		})
	}
	for i := range dst {
		if ctx.Err() != nil {
			break
		}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

func oneRequest(ctx context.Context, addr string, src net.IP, req, buf []byte, tlsCfg *tls.Config) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   10 * time.Second,
		LocalAddr: &net.TCPAddr{IP: src},
		// The port is chosen at connect, for the 4-tuple, not at bind for the address alone:
		// every source address then has the whole ephemeral range toward the server.
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return errors.Join(err, serr)
		},
	}
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

// closeAll closes the connections with a reset (SO_LINGER 0), so no TIME_WAIT is left on the
// ports for later runs.
func closeAll(cs []net.Conn) {
	for _, c := range cs {
		if c == nil {
			continue
		}
		raw := c
		if tc, ok := c.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
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
