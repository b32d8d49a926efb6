package examples_test

// The code of docs/EMBEDDING.md, compiled and driven here so the guide cannot drift from the
// API: the Prometheus collector, the streaming handler with watermarks, and logging with zap.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// --- docs/EMBEDDING.md, "Exposing Stats() to Prometheus" ---

// reactorCollector exports a reactor.Server's counters to Prometheus. It reads Stats at
// scrape time, on the scraping goroutine (Stats is safe from any goroutine and takes no lock),
// so the event loops do no metrics work at all.
type reactorCollector struct {
	srv                                               *reactor.Server
	open, accepted, closed, bytesIn, bytesOut, paused *prometheus.Desc
	iterations, waits, events, wakeups                *prometheus.Desc
}

func newReactorCollector(namespace string, srv *reactor.Server) *reactorCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "reactor", name), help, labels, nil)
	}
	return &reactorCollector{
		srv:        srv,
		open:       desc("connections_open", "Connections open now."),
		accepted:   desc("connections_accepted_total", "Connections accepted."),
		closed:     desc("connections_closed_total", "Connections closed."),
		bytesIn:    desc("read_bytes_total", "Bytes read from connections."),
		bytesOut:   desc("written_bytes_total", "Bytes written to connections."),
		paused:     desc("accept_paused_total", "Times accepting paused (out of fds, or WithMaxConns)."),
		iterations: desc("loop_iterations_total", "Event loop iterations.", "loop"),
		waits:      desc("loop_waits_total", "Poller Wait calls.", "loop"),
		events:     desc("loop_events_total", "Ready descriptors reported by Wait.", "loop"),
		wakeups:    desc("loop_wakeups_total", "Sleeping loop woken by Post, AsyncWrite or Close.", "loop"),
	}
}

func (c *reactorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.accepted, c.closed, c.bytesIn, c.bytesOut,
		c.paused, c.iterations, c.waits, c.events, c.wakeups} {
		ch <- d
	}
}

func (c *reactorCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.ConnsOpen))
	counter(c.accepted, st.ConnsAccepted)
	counter(c.closed, st.ConnsClosed)
	counter(c.bytesIn, st.BytesIn)
	counter(c.bytesOut, st.BytesOut)
	counter(c.paused, st.AcceptPaused)
	for _, l := range st.Loops {
		loop := strconv.Itoa(l.Index)
		counter(c.iterations, l.Iterations, loop)
		counter(c.waits, l.Waits, loop)
		counter(c.events, l.Events, loop)
		counter(c.wakeups, l.Wakeups, loop)
	}
}

// --- docs/EMBEDDING.md, "Backpressure" ---

// streamer answers a line holding a number N with N bytes of 'x'. It writes while the output
// is below the high-water mark and continues from OnWritable, so however large N is and
// however slowly the client reads, a connection holds about one chunk above the mark.
type streamer struct {
	peak atomic.Int64 // largest Buffered seen, for the test
	full atomic.Bool  // the output reached the high-water mark at least once
}

// stream is one connection's state, attached with SetContext.
type stream struct{ left int }

var chunk = bytes.Repeat([]byte("x"), 16<<10)

func (s *streamer) OnOpen(c *reactor.Conn)           { c.SetContext(&stream{}) }
func (s *streamer) OnClose(c *reactor.Conn, _ error) {}

func (s *streamer) OnData(c *reactor.Conn, in []byte) int {
	st := c.Context().(*stream)
	consumed := 0
	for st.left == 0 { // handle requests until one does not fit the output
		i := bytes.IndexByte(in[consumed:], '\n')
		if i < 0 {
			break
		}
		n, err := strconv.Atoi(string(in[consumed : consumed+i]))
		consumed += i + 1
		if err != nil || n < 0 {
			c.Write([]byte("bad request\n"))
			c.Close()
			return len(in)
		}
		st.left = n
		s.fill(c, st)
	}
	if st.left > 0 {
		// Still answering: read no further requests until this answer is out. OnWritable
		// resumes, and the reactor then hands the kept requests back to OnData.
		c.PauseRead()
	}
	return consumed
}

// OnWritable makes streamer a reactor.WritableHandler: the output drained to the low-water
// mark, so there is room for more.
func (s *streamer) OnWritable(c *reactor.Conn) {
	st := c.Context().(*stream)
	if st.left > 0 {
		s.fill(c, st)
		if st.left == 0 {
			c.ResumeRead()
		}
	}
}

func (s *streamer) fill(c *reactor.Conn, st *stream) {
	for st.left > 0 && !c.OutputFull() {
		n := min(st.left, len(chunk))
		c.Write(chunk[:n])
		st.left -= n
		if b := int64(c.Buffered()); b > s.peak.Load() {
			s.peak.Store(b)
		}
	}
	if st.left > 0 {
		s.full.Store(true)
	}
}

// --- tests ---

func startReactor(t *testing.T, h reactor.Handler, opts ...reactor.Option) (*reactor.Server, string) {
	t.Helper()
	srv, err := reactor.NewServer(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv, addr.String()
}

func TestReactorCollector(t *testing.T) {
	echo := reactor.HandlerFuncs{Data: func(c *reactor.Conn, in []byte) int {
		c.Write(in)
		return len(in)
	}}
	srv, addr := startReactor(t, echo, reactor.WithLoops(2))
	// The pedantic registry also checks that Collect sends only what Describe announced.
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(newReactorCollector("myapp", srv)); err != nil {
		t.Fatal(err)
	}

	c := dial(t, addr)
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Loop counters are published once per loop iteration: poll until they show up.
	want := map[string]float64{
		"myapp_reactor_connections_open":           0,
		"myapp_reactor_connections_accepted_total": 1,
		"myapp_reactor_connections_closed_total":   1,
		"myapp_reactor_read_bytes_total":           5,
		"myapp_reactor_written_bytes_total":        5,
		"myapp_reactor_accept_paused_total":        0,
	}
	var got map[string]float64
	var loops int
	testsupport.Eventually(t, 0, "the metrics", func() bool {
		got, loops = gather(t, reg)
		for name, v := range want {
			if got[name] != v {
				return false
			}
		}
		return true
	})
	if loops != 2 {
		t.Errorf("loop_iterations_total has %d series, want one per loop (2)", loops)
	}
	if got["myapp_reactor_loop_iterations_total"] == 0 || got["myapp_reactor_loop_waits_total"] == 0 {
		t.Errorf("loop counters are zero: %v", got)
	}
}

// gather returns each metric family's value summed over its series, and the number of series
// of loop_iterations_total.
func gather(t *testing.T, reg *prometheus.Registry) (map[string]float64, int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	loops := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			sums[mf.GetName()] += value(mf.GetType(), m)
		}
		if mf.GetName() == "myapp_reactor_loop_iterations_total" {
			loops = len(mf.GetMetric())
		}
	}
	return sums, loops
}

func value(typ dto.MetricType, m *dto.Metric) float64 {
	if typ == dto.MetricType_GAUGE {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

func TestStreamerBackpressure(t *testing.T) {
	const high, low = 64 << 10, 16 << 10
	s := &streamer{}
	_, addr := startReactor(t, s, reactor.WithLoops(1), reactor.WithWatermarks(high, low))
	c := dial(t, addr)
	// Two requests in one write: the second waits, paused, until the first is answered.
	const big = 4 << 20
	if _, err := fmt.Fprintf(c, "%d\n3\n", big); err != nil {
		t.Fatal(err)
	}
	// Do not read until the server has hit the high-water mark: that is the case the
	// watermarks exist for.
	testsupport.Eventually(t, 0, "the output to reach the high-water mark", s.full.Load)
	r := bufio.NewReaderSize(c, 64<<10)
	c.SetReadDeadline(time.Now().Add(stepTimeout))
	n, err := io.Copy(io.Discard, io.LimitReader(r, big+3))
	if err != nil || n != big+3 {
		// A stall here means OnWritable was not called after the output drained.
		t.Fatalf("read %d bytes (%v), want %d: the stream stalled", n, err, big+3)
	}
	// The kernel's socket buffers hold the rest; the reactor itself never held much more
	// than the high-water mark for this connection.
	if peak := s.peak.Load(); peak > high+int64(len(chunk)) {
		t.Fatalf("peak pending output %d bytes, want at most high-water mark + one chunk = %d", peak, high+len(chunk))
	}
}

func TestLoggerSeesAcceptPause(t *testing.T) {
	// --- docs/EMBEDDING.md, "Logging with zap": any *zap.Logger; here one that records. ---
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	greet := reactor.HandlerFuncs{Open: func(c *reactor.Conn) { c.Write([]byte("hi\n")) }}
	srv, addr := startReactor(t, greet, reactor.WithLoops(1), reactor.WithLogger(log), reactor.WithMaxConns(1))

	first := dial(t, addr)
	if _, err := bufio.NewReader(first).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// The second connection completes in the kernel's backlog, but the server is at its cap:
	// accepting pauses, which is logged once and counted.
	second := dial(t, addr)
	testsupport.Eventually(t, 0, "the accept-paused warning", func() bool {
		return logs.FilterMessage("accept paused: connection limit reached").Len() > 0
	})
	// The loop publishes its counters at the end of the iteration that logged the pause.
	testsupport.Eventually(t, 0, "Stats().AcceptPaused to count the pause", func() bool {
		return srv.Stats().AcceptPaused > 0
	})
	// Closing the first connection makes room; the second is accepted and greeted.
	first.Close()
	if line, err := bufio.NewReader(second).ReadString('\n'); err != nil || line != "hi\n" {
		t.Fatalf("second connection: %q, %v", line, err)
	}
	e := logs.FilterMessage("accept paused: connection limit reached").All()[0]
	if e.Level != zapcore.WarnLevel {
		t.Errorf("logged at %v, want warn", e.Level)
	}
}
