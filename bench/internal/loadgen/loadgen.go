// Package loadgen is a closed-loop HTTP/1.1 load generator on raw TCP. Each of C connections
// writes P pipelined requests in one write, waits until it has parsed all P responses, and
// starts again: the offered load follows what the server can take, as with wrk. It measures
// after a warm-up, records latency in an HDR histogram, and sorts failures into the kinds the
// report counts (bad status, invalid response, short response, connection error, wrong body).
//
// It does not use net/http's client: that client's own cost would dominate on a 2-core machine
// and it cannot pipeline.
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ErrBadConfig is returned by Run for a configuration it cannot run.
var ErrBadConfig = errors.New("loadgen: bad config")

// Config describes one load run.
type Config struct {
	// Addr is the server's TCP address, host:port.
	Addr string
	// Conns is the number of connections (C), at least 1.
	Conns int
	// Pipeline is the number of requests written back to back before waiting (P), at least 1.
	Pipeline int
	// Warmup runs load without recording before the measured Duration.
	Warmup time.Duration
	// Duration is the measured time, more than zero.
	Duration time.Duration
	// Request is one raw request; it must be complete (head and any body). Empty means
	// DefaultRequest(Addr).
	Request []byte
	// ExpectBody, when not nil, is compared with every Content-Length-framed response body;
	// a difference counts as a Body error.
	ExpectBody []byte
	// Timeout bounds the wait for a batch's responses and each dial; 0 means 5s.
	Timeout time.Duration
	// TLS, when set, speaks HTTPS: every connection makes a TLS handshake with this client
	// configuration (tlsconf.Client: a full handshake each time) before its first batch.
	TLS *tls.Config
	// NewConns closes every connection after one batch, so that each batch pays for a new
	// connection (and, with TLS, a full handshake): with Pipeline 1, requests per second are
	// connections (handshakes) per second.
	NewConns bool
	// MeasureStart and MeasureEnd, if set, are called from Run's goroutine at the exact
	// moments the measured window opens and closes, so that the caller can sample the
	// server's /proc counters around the same window the request count covers.
	MeasureStart func()
	MeasureEnd   func()
	// Progress, if set, is called about every 200ms with the time elapsed since the start of
	// the warm-up. It must not block.
	Progress func(elapsed time.Duration)
}

// DefaultRequest returns the request the harness sends: GET / with a Host header.
func DefaultRequest(addr string) []byte {
	return []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: reactord-bench\r\n\r\n")
}

// Errors counts failures by kind. Every kind but Reconnects is a failure; Reconnects counts
// connections the server closed politely (Connection: close) and that were dialled again.
type Errors struct {
	Status     uint64 `json:"status"`
	Invalid    uint64 `json:"invalid"`
	Short      uint64 `json:"short"`
	Conn       uint64 `json:"conn"`
	Body       uint64 `json:"body"`
	Reconnects uint64 `json:"reconnects"`
}

// Total is the number of failures (Reconnects excluded).
func (e Errors) Total() uint64 { return e.Status + e.Invalid + e.Short + e.Conn + e.Body }

func (e *Errors) add(o Errors) {
	e.Status += o.Status
	e.Invalid += o.Invalid
	e.Short += o.Short
	e.Conn += o.Conn
	e.Body += o.Body
	e.Reconnects += o.Reconnects
}

// Result is what one run measured.
type Result struct {
	// Requests is the number of responses received inside the measured window.
	Requests uint64 `json:"requests"`
	// Elapsed is the measured window's actual length.
	Elapsed time.Duration `json:"elapsed_ns"`
	// RPS is Requests / Elapsed.
	RPS float64 `json:"rps"`
	// P50, P99 and P999 are response latencies: from the batch's write to the parse of the
	// response, so a pipelined request's latency includes its wait behind the earlier ones.
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
	// Errors covers the warm-up and the measured window.
	Errors Errors `json:"errors"`
	// Dials counts the connections (TLS: handshakes) completed inside the measured window.
	Dials uint64 `json:"dials"`
}

type phase int32

const (
	phaseWarmup phase = iota
	phaseMeasure
	phaseStop
)

// Run drives the load described by cfg and returns what it measured. It returns early, with
// ctx's error, if ctx ends. Connection failures are counted, not returned: a server that
// refuses every connection gives a Result with Requests 0 and Errors.Conn > 0.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Conns < 1 || cfg.Pipeline < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Addr == "" {
		return nil, fmt.Errorf("%w: conns %d pipeline %d duration %v warmup %v addr %q",
			ErrBadConfig, cfg.Conns, cfg.Pipeline, cfg.Duration, cfg.Warmup, cfg.Addr)
	}
	if cfg.Pipeline > 1024 {
		return nil, fmt.Errorf("%w: pipeline %d > 1024", ErrBadConfig, cfg.Pipeline)
	}
	if len(cfg.Request) == 0 {
		cfg.Request = DefaultRequest(cfg.Addr)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	batch := make([]byte, 0, len(cfg.Request)*cfg.Pipeline)
	for range cfg.Pipeline {
		batch = append(batch, cfg.Request...)
	}

	var ph atomic.Int32
	workers := make([]*worker, cfg.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{cfg: &cfg, batch: batch, phase: &ph,
			hist: hdrhistogram.New(1000, int64(60*time.Second), 3)}
		workers[i] = w
		wg.Go(w.run)
	}

	start := time.Now()
	stop := func() {
		ph.Store(int32(phaseStop))
		for _, w := range workers {
			w.interrupt()
		}
		wg.Wait()
	}
	wait := func(until time.Time) error {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			d := time.Until(until)
			if d <= 0 {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				if cfg.Progress != nil {
					cfg.Progress(time.Since(start))
				}
			case <-time.After(d):
				return nil
			}
		}
	}
	if err := wait(start.Add(cfg.Warmup)); err != nil {
		stop()
		return nil, err
	}
	if cfg.MeasureStart != nil {
		cfg.MeasureStart()
	}
	mStart := time.Now()
	ph.Store(int32(phaseMeasure))
	err := wait(mStart.Add(cfg.Duration))
	ph.Store(int32(phaseStop))
	elapsed := time.Since(mStart)
	if cfg.MeasureEnd != nil {
		cfg.MeasureEnd()
	}
	stop()
	if err != nil {
		return nil, err
	}

	res := &Result{Elapsed: elapsed}
	all := hdrhistogram.New(1000, int64(60*time.Second), 3)
	for _, w := range workers {
		res.Requests += w.requests
		res.Dials += w.dials
		res.Errors.add(w.errs)
		all.Merge(w.hist)
	}
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	if all.TotalCount() > 0 {
		res.P50 = time.Duration(all.ValueAtPercentile(50))
		res.P99 = time.Duration(all.ValueAtPercentile(99))
		res.P999 = time.Duration(all.ValueAtPercentile(99.9))
		res.Max = time.Duration(all.Max())
	}
	return res, nil
}

// worker owns one connection. Its counters are written only by its goroutine and read by Run
// after wg.Wait, so they need no atomics.
type worker struct {
	cfg   *Config
	batch []byte
	phase *atomic.Int32

	mu   sync.Mutex // guards conn against interrupt
	conn net.Conn

	buf      []byte
	requests uint64
	dials    uint64 // connections made during the measured window
	errs     Errors
	hist     *hdrhistogram.Histogram
}

func (w *worker) stopped() bool { return phase(w.phase.Load()) == phaseStop }

// interrupt unblocks the worker's read or write by expiring its deadline.
func (w *worker) interrupt() {
	w.mu.Lock()
	if w.conn != nil {
		_ = w.conn.SetDeadline(time.Unix(1, 0))
	}
	w.mu.Unlock()
}

func (w *worker) setConn(c net.Conn) {
	w.mu.Lock()
	w.conn = c
	w.mu.Unlock()
	if c != nil && w.stopped() {
		_ = c.SetDeadline(time.Unix(1, 0))
	}
}

func (w *worker) run() {
	w.buf = make([]byte, 0, 64<<10)
	d := net.Dialer{Timeout: w.cfg.Timeout}
	defer func() {
		w.mu.Lock()
		if w.conn != nil {
			_ = w.conn.Close()
			w.conn = nil
		}
		w.mu.Unlock()
	}()
	for !w.stopped() {
		if w.conn == nil {
			c, err := w.dial(&d)
			if err != nil {
				if w.stopped() {
					return
				}
				w.errs.Conn++
				// Back off so a dead server is not hammered by a tight dial loop.
				time.Sleep(20 * time.Millisecond)
				continue
			}
			w.buf = w.buf[:0]
			w.setConn(c)
		}
		if !w.roundTrip() || w.cfg.NewConns {
			w.mu.Lock()
			_ = w.conn.Close()
			w.conn = nil
			w.mu.Unlock()
		}
	}
}

// dial connects and, with TLS, completes the handshake (so its cost falls before the first
// batch, and a handshake failure is a connection error).
func (w *worker) dial(d *net.Dialer) (net.Conn, error) {
	c, err := d.Dial("tcp", w.cfg.Addr)
	if err != nil {
		return nil, err
	}
	if w.cfg.TLS != nil {
		tc := tls.Client(c, w.cfg.TLS)
		_ = tc.SetDeadline(time.Now().Add(w.cfg.Timeout))
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return nil, err
		}
		c = tc
	}
	if phase(w.phase.Load()) == phaseMeasure {
		w.dials++
	}
	return c, nil
}

// roundTrip writes one batch and reads its responses. It returns false when the connection
// must be dropped (an error or a server close).
func (w *worker) roundTrip() bool {
	c := w.conn
	t0 := time.Now()
	_ = c.SetDeadline(t0.Add(w.cfg.Timeout))
	if w.stopped() {
		return false
	}
	if _, err := c.Write(w.batch); err != nil {
		w.countIOError(err, false)
		return false
	}
	want := w.cfg.Pipeline
	for want > 0 {
		// Parse every complete response already buffered before reading again.
		for want > 0 && len(w.buf) > 0 {
			resp, n, err := ParseResponse(w.buf)
			if err != nil {
				if !w.stopped() {
					w.errs.Invalid++
				}
				return false
			}
			if n == 0 {
				break
			}
			want--
			w.record(resp, t0)
			w.buf = w.buf[:copy(w.buf, w.buf[n:])]
			if resp.Close {
				if want > 0 && !w.stopped() {
					w.errs.Short++
				}
				w.errs.Reconnects++
				return false
			}
		}
		if want == 0 {
			break
		}
		if len(w.buf) == cap(w.buf) {
			w.buf = append(w.buf, 0)[:len(w.buf)]
		}
		n, err := c.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+n]
		if err != nil {
			w.countIOError(err, true)
			return false
		}
	}
	return true
}

func (w *worker) record(r Response, t0 time.Time) {
	if phase(w.phase.Load()) == phaseStop {
		return
	}
	if r.Status != 200 {
		w.errs.Status++
	} else if w.cfg.ExpectBody != nil && r.Body != nil && string(r.Body) != string(w.cfg.ExpectBody) {
		w.errs.Body++
	}
	if phase(w.phase.Load()) == phaseMeasure {
		w.requests++
		_ = w.hist.RecordValue(int64(time.Since(t0)))
	}
}

// countIOError sorts a read or write failure: EOF or a reset in the middle of a batch is a
// short response; a deadline while stopping is no error at all.
func (w *worker) countIOError(err error, reading bool) {
	if w.stopped() {
		return
	}
	if reading && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		w.errs.Short++
		return
	}
	// Resets, broken pipes and timeouts (os.ErrDeadlineExceeded) all count as connection errors.
	w.errs.Conn++
}
