// Package wsbench runs the `ws` subcommand's measurements against the WebSocket servers of
// package servers, each in a child process pinned to its own CPU with its own GOMAXPROCS, the
// load generator pinned to another, servers interleaved within every round.
//
//   - echo: C connections each keep one 64-byte message in flight (send, wait for the echo,
//     send again) for the duration; the server's CPU time per message comes from /proc.
//   - broadcast: N connections; one asks the server to broadcast a 64-byte message, and the
//     time until every connection has received it, and the server's CPU time for it, are
//     recorded, K times per round.
//   - idle: N open WebSocket connections that do nothing; the growth of the server's resident
//     memory per connection. Source addresses 127.0.0.1, .2, ... give every 25,000
//     connections their own ephemeral port range.
//
// The client side is one goroutine on an epoll set of its own over the connections' raw
// descriptors (the net.Conn values only keep them open), so the load generator's cost per
// message is a read and a write, not a goroutine wake-up.
package wsbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBadConfig is returned for a configuration that cannot run.
var ErrBadConfig = errors.New("wsbench: bad config")

// ErrProtocol is returned when a server answers something unexpected.
var ErrProtocol = errors.New("wsbench: unexpected answer")

// PayloadSize is the size of every message sent: 64 bytes, a typical small message.
const PayloadSize = 64

// conn is one client WebSocket connection after the handshake.
type conn struct {
	nc  net.Conn
	fd  int
	in  int // bytes of the awaited frame received so far
	got bool
}

// frame encodes a masked client text frame (mask key fixed: the server unmasks either way).
func frame(payload []byte) []byte {
	b := []byte{0x81, 0x80 | byte(len(payload))}
	if len(payload) > 125 {
		b = []byte{0x81, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload))}
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// serverFrameLen is the length of the server's unmasked frame for n payload bytes (n ≤ 125).
func serverFrameLen(n int) int { return 2 + n }

const handshake = "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// dial opens a WebSocket connection from source address src (nil: any).
func dial(ctx context.Context, addr string, src net.IP) (*conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(nc, handshake, addr); err != nil {
		nc.Close()
		return nil, err
	}
	// Read the 101 up to its end. The servers send nothing after it until asked, so a read
	// never takes a frame along; anything after the head is an error.
	var buf [4096]byte
	resp := buf[:0]
	for !bytes.Contains(resp, []byte("\r\n\r\n")) {
		if len(resp) == len(buf) {
			nc.Close()
			return nil, fmt.Errorf("%w: handshake response over 4 KiB", ErrProtocol)
		}
		n, err := nc.Read(buf[len(resp):])
		resp = buf[:len(resp)+n]
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("handshake: %w after %q", err, resp)
		}
	}
	if !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		nc.Close()
		return nil, fmt.Errorf("%w: bytes after the handshake response", ErrProtocol)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
		nc.Close()
		return nil, fmt.Errorf("%w: handshake answered %q", ErrProtocol, resp)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{nc: nc}
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := rc.Control(func(fd uintptr) { c.fd = int(fd) }); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// nextSource numbers the loopback source addresses handed out so far: every dialMany takes
// fresh ones, so that the ports of an earlier run's connections (in TIME_WAIT if a server
// closed first) are never needed again.
var nextSource atomic.Int64

// sourceAddr returns loopback address number k: 127.a.b.c with c in 1..254.
func sourceAddr(k int64) net.IP {
	k %= 254 * 256 * 256
	return net.IPv4(127, byte(k/(254*256)), byte(k/254%256), byte(1+k%254))
}

// dialMany opens n connections with 64 dialers at a time.
func dialMany(ctx context.Context, addr string, n int) ([]*conn, error) {
	conns := make([]*conn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	// 25,000 connections per source address: Linux's default ephemeral range holds 28,232.
	base := nextSource.Add(int64(n/25000+1)) - int64(n/25000+1)
	next := make(chan int)
	for range min(64, n) {
		wg.Go(func() {
			for i := range next {
				c, err := dial(ctx, addr, sourceAddr(base+int64(i/25000)))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
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
	if first != nil {
		closeAll(conns)
		return nil, first
	}
	return conns, nil
}

// closeAll closes the connections with a reset (SO_LINGER 0): no TIME_WAIT is left behind on
// either side to hold ports for the next run.
func closeAll(cs []*conn) {
	for _, c := range cs {
		if c != nil {
			_ = c.nc.(*net.TCPConn).SetLinger(0)
			c.nc.Close()
		}
	}
}

// poller is an epoll set over the client connections.
type poller struct {
	epfd   int
	events []unix.EpollEvent
	byFd   map[int]*conn
}

func newPoller(conns []*conn) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: epfd, events: make([]unix.EpollEvent, 256), byFd: make(map[int]*conn, len(conns))}
	for _, c := range conns {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			unix.Close(epfd)
			return nil, err
		}
		p.byFd[c.fd] = c
	}
	return p, nil
}

func (p *poller) close() { unix.Close(p.epfd) }

// wait returns the connections with input, waiting at most ms milliseconds.
func (p *poller) wait(ms int, ready []*conn) ([]*conn, error) {
	n, err := unix.EpollWait(p.epfd, p.events, ms)
	if err != nil {
		if err == unix.EINTR {
			return ready[:0], nil
		}
		return nil, err
	}
	ready = ready[:0]
	for _, ev := range p.events[:n] {
		ready = append(ready, p.byFd[int(ev.Fd)])
	}
	return ready, nil
}

// readFrames reads what c has (non-blocking) and returns how many whole frames of want bytes
// it completed; anything else is a protocol error.
func readFrames(c *conn, buf []byte, want int) (int, error) {
	done := 0
	for {
		n, err := unix.Read(c.fd, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			return done, nil
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, fmt.Errorf("%w: server closed the connection", ErrProtocol)
		}
		// Frames of a fixed size: only their count matters. The first bytes of a frame are
		// checked (FIN, text or binary, the payload length).
		for _, b := range buf[:n] {
			switch c.in {
			case 0:
				if b != 0x81 && b != 0x82 {
					return done, fmt.Errorf("%w: frame starts with %#x", ErrProtocol, b)
				}
			case 1:
				if int(b) != want-2 {
					return done, fmt.Errorf("%w: frame of %d bytes, want %d", ErrProtocol, b, want-2)
				}
			}
			c.in++
			if c.in == want {
				c.in = 0
				done++
			}
		}
		if n < len(buf) {
			return done, nil
		}
	}
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue // a small frame into a socket that had room a moment ago
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// echoResult is what an echo window produced.
type echoResult struct {
	Messages int64
	Elapsed  time.Duration
}

// runEcho keeps one message in flight per connection; measureStart and measureEnd are called
// at the edges of the measured window (after the warm-up).
func runEcho(ctx context.Context, conns []*conn, warmup, duration time.Duration, measureStart, measureEnd func()) (echoResult, error) {
	p, err := newPoller(conns)
	if err != nil {
		return echoResult{}, err
	}
	defer p.close()
	msg := frame(bytes.Repeat([]byte("e"), PayloadSize))
	want := serverFrameLen(PayloadSize)
	for _, c := range conns {
		if err := writeAll(c.fd, msg); err != nil {
			return echoResult{}, err
		}
	}
	buf := make([]byte, 64<<10)
	var ready []*conn
	start := time.Now()
	measureFrom, until := start.Add(warmup), start.Add(warmup+duration)
	measuring := false
	var res echoResult
	var t0 time.Time
	for {
		now := time.Now()
		if !measuring && !now.Before(measureFrom) {
			measuring, t0 = true, now
			measureStart()
		}
		if !now.Before(until) {
			measureEnd()
			res.Elapsed = now.Sub(t0)
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if ready, err = p.wait(10, ready); err != nil {
			return res, err
		}
		for _, c := range ready {
			n, err := readFrames(c, buf, want)
			if err != nil {
				return res, err
			}
			for range n {
				if measuring {
					res.Messages++
				}
				if err := writeAll(c.fd, msg); err != nil {
					return res, err
				}
			}
		}
	}
}

// runBroadcast asks the server, through conns[0], to broadcast k messages one after the other,
// each once every connection has received the previous one, and returns the time each took.
func runBroadcast(ctx context.Context, conns []*conn, k int) ([]time.Duration, error) {
	p, err := newPoller(conns)
	if err != nil {
		return nil, err
	}
	defer p.close()
	payload := bytes.Repeat([]byte("b"), PayloadSize)
	trigger := frame(append([]byte("BROADCAST "), payload...))
	want := serverFrameLen(PayloadSize)
	buf := make([]byte, 64<<10)
	var ready []*conn
	times := make([]time.Duration, 0, k)
	for range k {
		pending := len(conns)
		for _, c := range conns {
			c.got = false
		}
		t0 := time.Now()
		if err := writeAll(conns[0].fd, trigger); err != nil {
			return times, err
		}
		deadline := t0.Add(30 * time.Second)
		for pending > 0 {
			if ctx.Err() != nil {
				return times, ctx.Err()
			}
			if time.Now().After(deadline) {
				return times, fmt.Errorf("%w: %d of %d connections without the broadcast after 30s", ErrProtocol, pending, len(conns))
			}
			if ready, err = p.wait(100, ready); err != nil {
				return times, err
			}
			for _, c := range ready {
				n, err := readFrames(c, buf, want)
				if err != nil {
					return times, err
				}
				if n > 1 || n == 1 && c.got {
					return times, fmt.Errorf("%w: a connection got the broadcast twice", ErrProtocol)
				}
				if n == 1 {
					c.got = true
					pending--
				}
			}
		}
		times = append(times, time.Since(t0))
	}
	return times, nil
}

// echoEach sends one echo message on every connection and waits for each answer. A server
// that answers a connection's message has finished accepting it, so a broadcast after this
// reaches every connection: the handshake's 101 alone does not say so, because a
// goroutine-per-connection server (gobwas, gorilla, ...) adds the connection to its broadcast
// set after writing the 101, and a broadcast asked for in between would miss it.
func echoEach(ctx context.Context, conns []*conn) error {
	p, err := newPoller(conns)
	if err != nil {
		return err
	}
	defer p.close()
	msg := frame(bytes.Repeat([]byte("e"), PayloadSize))
	want := serverFrameLen(PayloadSize)
	for _, c := range conns {
		c.got = false
		if err := writeAll(c.fd, msg); err != nil {
			return err
		}
	}
	buf := make([]byte, 64<<10)
	var ready []*conn
	deadline := time.Now().Add(30 * time.Second)
	for pending := len(conns); pending > 0; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d of %d connections without their echo after 30s", ErrProtocol, pending, len(conns))
		}
		if ready, err = p.wait(100, ready); err != nil {
			return err
		}
		for _, c := range ready {
			n, err := readFrames(c, buf, want)
			if err != nil {
				return err
			}
			if n > 1 || n == 1 && c.got {
				return fmt.Errorf("%w: a connection got its echo twice", ErrProtocol)
			}
			if n == 1 {
				c.got = true
				pending--
			}
		}
	}
	return nil
}
