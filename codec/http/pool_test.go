package http

import (
	"io"
	nethttp "net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// slowFastMux is the scenario of issue 20: a slow route beside fast ones. /slow blocks until
// gate is closed (or sleeps d when gate is nil).
func slowFastMux(gate chan struct{}, d time.Duration, entered *atomic.Int64) *nethttp.ServeMux {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/slow", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		entered.Add(1)
		if gate != nil {
			<-gate
		} else {
			time.Sleep(d)
		}
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/fast", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "fast")
	})
	return mux
}

// TestAdapterSlowRouteDoesNotHoldUpFastOnes: with 64 connections blocked in a slow route, fast
// requests are still answered — the pool grows instead of queueing them behind the slow ones.
// (With the old fixed pool of 16 workers the fast requests waited for the slow ones.)
func TestAdapterSlowRouteDoesNotHoldUpFastOnes(t *testing.T) {
	const slowConns = 64
	gate := make(chan struct{})
	var entered atomic.Int64
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	s, addr := startServer(t, Adapt(slowFastMux(gate, 0, &entered)), WithReactorOptions(reactor.WithLoops(1)))
	t.Cleanup(open)
	slow := make([]*client, slowConns)
	for i := range slow {
		slow[i] = dialClient(t, addr)
		slow[i].send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	testsupport.Eventually(t, 0, "every slow request to be running", func() bool { return entered.Load() == slowConns })
	fast := dialClient(t, addr)
	for i := 0; i < 100; i++ {
		fast.send("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, body := fast.read("GET"); body != "fast" {
			t.Fatalf("fast %d: %q", i, body)
		}
	}
	if n := entered.Load(); n != slowConns {
		t.Fatalf("slow requests entered: %d", n)
	}
	if st := s.Stats(); st.Queued != 0 || st.Running != slowConns || st.Workers < slowConns {
		t.Fatalf("stats while slow requests block: %+v", st)
	}
	open()
	for _, cl := range slow {
		if _, body := cl.read("GET"); body != "slow" {
			t.Fatalf("slow: %q", body)
		}
	}
}

// TestAdapterQueueStatsAndShedding: beyond WithWorkers requests queue (Stats.Queued, then
// Dequeued and QueueWaitTotal once they ran); beyond WithMaxQueue they are refused at once
// with 503 (Stats.Shed), not queued.
func TestAdapterQueueStatsAndShedding(t *testing.T) {
	gate := make(chan struct{})
	var entered atomic.Int64
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	s, addr := startServer(t, Adapt(slowFastMux(gate, 0, &entered)), WithWorkers(2), WithMaxQueue(3))
	t.Cleanup(open)
	var cls []*client
	for i := 0; i < 5; i++ {
		cl := dialClient(t, addr)
		cl.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		cls = append(cls, cl)
	}
	testsupport.Eventually(t, 0, "2 running and 3 queued", func() bool {
		st := s.Stats()
		return entered.Load() == 2 && st.Queued == 3 && st.Running == 2
	})
	// The queue is full: the next request is shed at once, with 503 and a close.
	shed := dialClient(t, addr)
	shed.send("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := shed.read("GET"); resp.StatusCode != 503 || !shed.closed() {
		t.Fatalf("over the queue bound: %d", resp.StatusCode)
	}
	if st := s.Stats(); st.Shed != 1 || st.Workers != 2 || st.WorkersMax != 2 {
		t.Fatalf("stats: %+v", st)
	}
	open()
	for _, cl := range cls {
		if _, body := cl.read("GET"); body != "slow" {
			t.Fatalf("%q", body)
		}
	}
	st := s.Stats()
	if st.Queued != 0 || st.Dequeued != 3 || st.QueueWaitTotal <= 0 {
		t.Fatalf("stats after: %+v", st)
	}
}

// TestAdapterIdleWorkersRetire: workers started for a burst exit after idleRetire, down to
// the pool's minimum. (Waits for the retirement; several seconds.)
func TestAdapterIdleWorkersRetire(t *testing.T) {
	if testing.Short() {
		t.Skip("waits idleRetire")
	}
	gate := make(chan struct{})
	var entered atomic.Int64
	s, addr := startServer(t, Adapt(slowFastMux(gate, 0, &entered)))
	const n = 40
	var cls []*client
	for i := 0; i < n; i++ {
		cl := dialClient(t, addr)
		cl.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		cls = append(cls, cl)
	}
	testsupport.Eventually(t, 0, "all running", func() bool { return entered.Load() == n })
	close(gate)
	for _, cl := range cls {
		cl.read("GET")
	}
	if w := s.Stats().Workers; w < n {
		t.Fatalf("workers after the burst: %d", w)
	}
	testsupport.Eventually(t, idleRetire*4, "idle workers to retire", func() bool {
		return s.Stats().Workers <= s.pool.minIdle
	})
}

// TestSlowRouteLatencyReport measures issue 20's scenario with real time (a 200 ms route, fast
// requests on another connection) and logs fast-request percentiles without, with 16 and with
// 64 connections looping on the slow route. It asserts nothing about time (timed tests are
// not allowed here); run it with REACTORD_SLOWROUTE_REPORT=1 -v to get the numbers for
// docs/BENCHMARKS.md.
func TestSlowRouteLatencyReport(t *testing.T) {
	if os.Getenv("REACTORD_SLOWROUTE_REPORT") == "" {
		t.Skip("set REACTORD_SLOWROUTE_REPORT=1 to measure")
	}
	for _, loops := range []int{0, 16, 64} {
		var entered atomic.Int64
		s, addr := startServer(t, Adapt(slowFastMux(nil, 200*time.Millisecond, &entered)))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < loops; i++ {
			cl := dialClient(t, addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					cl.c.Write([]byte("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"))
					if _, _, err := readResponse(cl.br, "GET"); err != nil {
						return
					}
				}
			}()
		}
		fast := dialClient(t, addr)
		var lat []time.Duration
		end := time.Now().Add(3 * time.Second)
		for time.Now().Before(end) {
			t0 := time.Now()
			fast.send("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
			fast.read("GET")
			lat = append(lat, time.Since(t0))
		}
		close(stop)
		wg.Wait()
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
		t.Logf("slow loops %2d: %6d fast requests in 3s, p50 %v, p99 %v, max %v; workers %d",
			loops, len(lat), pct(0.5), pct(0.99), lat[len(lat)-1], s.Stats().Workers)
		s.Close()
	}
}
