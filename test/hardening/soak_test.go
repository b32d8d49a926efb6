//go:build linux

package hardening_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestSoak holds a mixed load on the daemon for $REACTORD_SOAK (a Go duration, e.g. 10m) and
// samples its RSS, descriptors and goroutines, printing a table. Without the variable it runs
// a 4 s smoke of the same code so the soak cannot rot; -short skips it.
//
//	REACTORD_SOAK=10m go test ./test/hardening -run TestSoak -v -timeout 20m
func TestSoak(t *testing.T) {
	dur, every := 4*time.Second, time.Second
	if v := os.Getenv("REACTORD_SOAK"); v != "" {
		var err error
		if dur, err = time.ParseDuration(v); err != nil || dur <= 0 {
			t.Fatalf("REACTORD_SOAK=%q: want a positive Go duration such as 10m", v)
		}
		every = 5 * time.Second
	} else if testing.Short() {
		t.Skip("soak smoke skipped in -short; set REACTORD_SOAK=10m for the real soak")
	} else {
		t.Log("REACTORD_SOAK not set: 4 s smoke only; REACTORD_SOAK=10m runs the real soak")
	}
	opts := daemonOpts{args: []string{"-header-timeout", "2s", "-idle-timeout", "5s"}}
	idle := idleGoroutines(t, opts)
	d := startDaemon(t, opts)
	if st, _, err := fetch(d.addr, bigPath); err != nil || st != 200 {
		t.Fatalf("warm-up: %d %v", st, err)
	}
	fds0, fdList0 := d.quiescentFds(t)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, slowClosed, faultsDone atomic.Int64
	errs := make(chan error, 64)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	// Keep-alive clients, alternating the small and the 64 KiB file.
	for range 4 {
		wg.Go(func() {
			var tally loadTally
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := tally.complete.Load()
				loadClient(d.addr, &tally, stopAfter(stop, 200*time.Millisecond), nil)
				requests.Add(tally.complete.Load() - before)
				if n := tally.lost.Load() + tally.notWritten.Load() + tally.closedUnread.Load(); n != 0 {
					report(fmt.Errorf("keep-alive client: %d requests without a whole response", n))
					return
				}
			}
		})
	}
	// A connection per request.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if st, body, err := fetch(d.addr, smallPath); err != nil || st != 200 || string(body) != string(smallBody) {
				report(fmt.Errorf("one-shot client: %d %v", st, err))
				return
			}
			requests.Add(1)
		}
	})
	// Slowloris waves of 20 connections, each answered 408 at the header timeout.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var wave sync.WaitGroup
			for range 20 {
				wave.Go(func() {
					r := slowAttempt(d.addr, testsupport.Deadline(10*time.Second))
					for try := 0; try < 3 && r.late(); try++ {
						r = slowAttempt(d.addr, testsupport.Deadline(10*time.Second))
					}
					if r.err != nil {
						report(r.err)
						return
					}
					if resps, err := parseResponses(r.data); !r.closed || err != nil || len(resps) != 1 || resps[0].status != 408 {
						report(fmt.Errorf("slow connection: closed=%v %q", r.closed, r.data))
						return
					}
					slowClosed.Add(1)
				})
			}
			wave.Wait()
		}
	})
	// Faults: the RST-mid-response and half-close cases, over and over.
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond): // fault rate
			}
			if err := faults[i%len(faults)].run(d.addr); err != nil {
				report(fmt.Errorf("fault %q: %w", faults[i%len(faults)].name, err))
				return
			}
			faultsDone.Add(1)
		}
	})

	type sample struct {
		at         time.Duration
		rss        int64
		fds        int
		requests   int64
		slowClosed int64
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(every)
	for time.Since(start) < dur {
		<-tick.C
		samples = append(samples, sample{time.Since(start).Round(time.Second), d.rssKiB(), d.fds(), requests.Load(), slowClosed.Load()})
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var tab strings.Builder
	fmt.Fprintf(&tab, "%8s %10s %6s %10s %8s\n", "t", "RSS KiB", "fds", "requests", "408s")
	for _, s := range samples {
		fmt.Fprintf(&tab, "%8v %10d %6d %10d %8d\n", s.at, s.rss, s.fds, s.requests, s.slowClosed)
	}
	t.Logf("soak samples:\n%s", tab.String())

	d.waitFds(t, fds0, fdList0, 20*time.Second)
	fds1 := d.fds()
	// No steady growth: the second half's peak RSS stays within 25% (+2 MiB) of the first
	// half's. (The smoke run is too short for halves to mean much; it checks the plumbing.)
	half := len(samples) / 2
	var peak1, peak2 int64
	for i, s := range samples {
		if i < half {
			peak1 = max(peak1, s.rss)
		} else {
			peak2 = max(peak2, s.rss)
		}
	}
	if half > 0 && peak2 > peak1+peak1/4+2048 {
		t.Errorf("RSS grew from a first-half peak of %d KiB to %d KiB", peak1, peak2)
	}
	// The goroutines are an idle daemon's once the load is gone (this ends the daemon: see
	// goroutines_test.go; graceful shutdown has tests of its own).
	g1 := d.checkGoroutines(t, idle)
	t.Logf("FIGURE: soak %v: %d requests, %d slowloris 408s, %d faults; RSS first-half peak %d KiB, second-half peak %d KiB; fds %d -> %d; goroutines idle daemon=%d after=%d",
		dur, requests.Load(), slowClosed.Load(), faultsDone.Load(), peak1, peak2, fds0, fds1, idle.total(), g1)
}

// stopAfter returns a channel closed when stop is closed or after d, whichever is first:
// loadClient runs in short stints so the soak can read its counters.
func stopAfter(stop <-chan struct{}, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		select {
		case <-stop:
		case <-time.After(d):
		}
	}()
	return ch
}
