//go:build linux

package hardening_test

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// Flood parameters: the daemon gets 64 descriptors; the flood opens 4x that many connections.
const (
	floodNofile = 64
	floodConns  = 256
	cpuWindow   = time.Second
)

func TestConnectionFlood(t *testing.T) {
	d := startDaemon(t, daemonOpts{
		nofile: floodNofile,
		// Long timeouts: the flood connections send nothing, and the daemon must keep them
		// (and so stay out of descriptors) for the whole measurement.
		args: []string{"-header-timeout", "60s", "-idle-timeout", "60s"},
	})
	if got := d.nofileLimit(); got != floodNofile {
		t.Fatalf("daemon RLIMIT_NOFILE = %d, want %d", got, floodNofile)
	}

	// The existing keep-alive connection, established before the flood.
	keep, err := dial(d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	kbr := bufio.NewReader(keep)
	serveKeep := func(path string) (int, error) {
		_ = keep.SetDeadline(testsupport.Deadline(5 * time.Second))
		resp, _, err := roundTrip(keep, kbr, getReq(path))
		if err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	if st, err := serveKeep("/healthz"); err != nil || st != 200 {
		t.Fatalf("before the flood: %d %v", st, err)
	}
	fdsBefore := d.fds() // the keep-alive connection is open and idle: counted

	// The flood: connections dialled in parallel with a short timeout. Once the daemon is out
	// of descriptors the rest wait in the listen backlog, and past the backlog the kernel
	// drops their SYNs (those dials time out).
	var mu sync.Mutex
	var flood []net.Conn
	var dialFail int
	var wg sync.WaitGroup
	for range floodConns {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", d.addr, testsupport.Scale(2*time.Second))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				dialFail++
				return
			}
			flood = append(flood, c)
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	// The daemon sheds (reactor.WithShedding): at its descriptor limit less a reserve it
	// closes the silent flood connections, oldest first, to admit the next ones, and stops
	// once the backlog is drained (the flood does not reconnect).
	testsupport.Eventually(t, 10*time.Second, "the daemon to reach its descriptor limit and shed", func() bool {
		return strings.Contains(d.logs.String(), "shedding connections")
	})
	fdsFlood := d.fds()

	// While out of descriptors: the existing connection is served, and the daemon sleeps
	// between accept retries instead of spinning on the readable listener. The existing
	// connection asks every 50 ms, so the CPU figure is the flood's cost, not the requests'.
	t0, ticks0 := time.Now(), d.cpuTicks()
	served := 0
	for time.Since(t0) < cpuWindow {
		st, err := serveKeep("/healthz")
		if err != nil || st != 200 {
			t.Fatalf("existing connection during the flood: status %d, %v (served %d before)", st, err, served)
		}
		served++
		time.Sleep(50 * time.Millisecond) // request pacing of the existing client
	}
	ticks, elapsed := d.cpuTicks()-ticks0, time.Since(t0)
	cpu := float64(ticks) / userHZ / elapsed.Seconds()
	fileStatus, fileErr := serveKeep(smallPath)

	t.Logf("FIGURE: flood nofile=%d dialled=%d (timed out %d) daemon-fds before=%d during=%d; existing conn served %d requests in %v; daemon CPU %.1f%% of one core (%d ticks); static file during flood: status %d err %v",
		floodNofile, len(flood), dialFail, fdsBefore, fdsFlood, served, elapsed.Round(time.Millisecond), 100*cpu, ticks, fileStatus, fileErr)
	if cpu > 0.5 {
		t.Errorf("daemon used %.0f%% of a core while out of descriptors: spinning", 100*cpu)
	}
	// Opening the file needs descriptors (the file and sendfile's dup): shedding keeps a
	// reserve of them, so the file is served.
	if fileErr != nil || fileStatus != 200 {
		t.Errorf("static file on the existing connection during the flood: %d %v", fileStatus, fileErr)
	}

	// Release the flood: new connections are accepted again.
	for _, c := range flood {
		c.Close()
	}
	flood = nil
	start := time.Now()
	testsupport.Eventually(t, 20*time.Second, "a new connection to be served after the flood", func() bool {
		st, _, err := fetch(d.addr, smallPath)
		return err == nil && st == 200
	})
	recovered := time.Since(start)
	if st, err := serveKeep(smallPath); err != nil || st != 200 {
		t.Fatalf("existing connection after the flood: %d %v", st, err)
	}
	d.waitFds(t, fdsBefore, "(pre-flood list not kept)", 15*time.Second)
	t.Logf("FIGURE: flood released: new connection served after %v; daemon fds back to %d", recovered.Round(time.Millisecond), fdsBefore)
	keep.Close()
	if st := d.stop(15 * time.Second); st != 0 {
		t.Fatalf("daemon exit status %d; log:\n%s", st, d.logs.String())
	}
}
