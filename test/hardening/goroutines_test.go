//go:build linux

package hardening_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The daemon's goroutines are counted from a stack dump, not from go_goroutines on /metrics.
// That gauge is read by the metrics gatherer while it gathers, so it also counts the
// prometheus registry's own gathering goroutines: one to three, depending on how the
// scheduler runs them. An idle daemon's gauge moves between 7 and 10 (measured: one fresh
// snapshot every 5 s for a minute read 7 9 9 9 9 7 9 10 9 9 9), and a check of "not above a
// baseline snapshot" failed whenever the baseline was a low draw (issue 11: "want at most 8
// ... said 9"). A dump is exact, and on a failure it shows the stacks of the goroutines that
// should not be there.
//
// The price: the Go runtime prints the dump on SIGQUIT and then exits (status 2), so a test
// takes it at its very end, and compares it with the dump of a second, idle daemon started
// with the same flags (so the comparison holds whatever goroutines the daemon runs by design:
// one per loop, the signal watcher, the metrics gatherer, ...).

// goroutineSet is a daemon's goroutines, counted by the function that created them.
type goroutineSet struct {
	byCreator map[string]int
	stacks    map[string][]string // each goroutine's dump block, by creator
}

// mainGoroutine is the key of the goroutine that runs main (it has no creator).
const mainGoroutine = "main goroutine"

// transientCreator names the goroutines that exist only while the metrics gatherer gathers
// (every 5 s, for a few milliseconds): Registry.Gather's workers and the goroutine that
// waits for them. A dump may catch them in either daemon; they are not counted.
const transientCreator = "github.com/prometheus/client_golang/prometheus.(*Registry).Gather"

// parseGoroutineDump reads the goroutine blocks of a Go runtime stack dump ("goroutine N
// [state]:" followed by frames and, except for the main goroutine, "created by F in
// goroutine M"). The runtime's own goroutines (created by a runtime function, or goroutine 0)
// and the transient gathering goroutines are left out.
func parseGoroutineDump(dump string) (goroutineSet, error) {
	s := goroutineSet{byCreator: map[string]int{}, stacks: map[string][]string{}}
	blocks := strings.Split(dump, "\ngoroutine ")
	if len(blocks) < 2 {
		return s, fmt.Errorf("no goroutine in the dump")
	}
	for _, b := range blocks[1:] {
		b = "goroutine " + strings.TrimSpace(b)
		header, _, _ := strings.Cut(b, "\n")
		if strings.HasPrefix(header, "goroutine 0 ") {
			continue // the scheduler's own stack
		}
		creator := mainGoroutine
		if i := strings.LastIndex(b, "\ncreated by "); i >= 0 {
			line, _, _ := strings.Cut(b[i+len("\ncreated by "):], "\n")
			creator, _, _ = strings.Cut(line, " in goroutine ")
		} else if !strings.HasPrefix(header, "goroutine 1 ") {
			return s, fmt.Errorf("goroutine without a creator: %q", header)
		}
		if strings.HasPrefix(creator, "runtime.") || creator == transientCreator {
			continue
		}
		// A block ends where the register dump begins, after the last goroutine.
		if i := strings.Index(b, "\n\n"); i >= 0 {
			b = b[:i]
		}
		s.byCreator[creator]++
		s.stacks[creator] = append(s.stacks[creator], b)
	}
	if s.byCreator[mainGoroutine] != 1 {
		return s, fmt.Errorf("dump has %d main goroutines, want 1", s.byCreator[mainGoroutine])
	}
	return s, nil
}

// total is the number of goroutines in the set.
func (s goroutineSet) total() int {
	n := 0
	for _, c := range s.byCreator {
		n += c
	}
	return n
}

// diff describes how s differs from want, with the stacks of the goroutines s has in excess;
// "" when they hold the same goroutines.
func (s goroutineSet) diff(want goroutineSet) string {
	var b strings.Builder
	keys := slices.Sorted(maps.Keys(s.byCreator))
	for k := range want.byCreator {
		if _, ok := s.byCreator[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		got, exp := s.byCreator[k], want.byCreator[k]
		if got == exp {
			continue
		}
		fmt.Fprintf(&b, "created by %s: %d, want %d\n", k, got, exp)
		if got > exp {
			for _, st := range s.stacks[k][:min(len(s.stacks[k]), 3)] {
				fmt.Fprintf(&b, "%s\n\n", st)
			}
		}
	}
	return b.String()
}

// quitGoroutines ends the daemon with SIGQUIT and returns its goroutines from the dump the
// runtime prints on its way out. The daemon must be quiescent (no connection open) for the
// set to mean anything; it is not running afterwards.
func (d *daemon) quitGoroutines(t testing.TB) goroutineSet {
	t.Helper()
	if err := d.cmd.Process.Signal(unix.SIGQUIT); err != nil {
		t.Fatalf("SIGQUIT: %v", err)
	}
	if st := d.wait(15 * time.Second); st != 2 {
		t.Fatalf("daemon exit status %d after SIGQUIT, want 2 (the runtime's dump); log:\n%s", st, d.logs.String())
	}
	logs := d.logs.String()
	i := strings.Index(logs, "SIGQUIT: quit")
	if i < 0 {
		t.Fatalf("no stack dump after SIGQUIT; log:\n%s", logs)
	}
	s, err := parseGoroutineDump(logs[i:])
	if err != nil {
		t.Fatalf("parse the stack dump: %v; log:\n%s", err, logs)
	}
	return s
}

// idleGoroutines starts a second daemon with o, makes the warm-up request the tests make,
// waits until it holds no connection, and returns its goroutines: what a daemon under test
// must come back to once its load is gone.
func idleGoroutines(t testing.TB, o daemonOpts) goroutineSet {
	t.Helper()
	d := startDaemon(t, o)
	if st, _, err := fetch(d.addr, bigPath); err != nil || st != 200 {
		t.Fatalf("idle daemon warm-up: %d %v", st, err)
	}
	d.quiescentFds(t)
	return d.quitGoroutines(t)
}

// checkGoroutines fails the test if d (quiescent, after its load) does not hold exactly the
// goroutines of idle; d is not running afterwards. It returns d's count.
func (d *daemon) checkGoroutines(t testing.TB, idle goroutineSet) int {
	t.Helper()
	got := d.quitGoroutines(t)
	if diff := got.diff(idle); diff != "" {
		t.Fatalf("daemon goroutines after the load differ from an idle daemon's (%d vs %d):\n%s", got.total(), idle.total(), diff)
	}
	return got.total()
}

func TestParseGoroutineDump(t *testing.T) {
	const loop = "goroutine 23 gp=0x1 m=3 [syscall, locked to thread]:\nreactor.(*Loop).run()\n\t/x/loop.go:112\ncreated by github.com/reactord/reactord/reactor.(*Server).Start in goroutine 1\n\t/x/server.go:316 +0x4c5\n"
	const main1 = "goroutine 1 gp=0x2 m=nil [select]:\nmain.main()\n\t/x/main.go:10\n"
	const sys = "goroutine 2 gp=0x3 m=nil [force gc (idle)]:\nruntime.forcegchelper()\ncreated by runtime.init.7 in goroutine 1\n"
	const gather = "goroutine 90 gp=0x4 m=nil [running]:\nprometheus.collectWorker()\ncreated by github.com/prometheus/client_golang/prometheus.(*Registry).Gather in goroutine 22\n"
	const leak = "goroutine 77 gp=0x5 m=nil [chan receive]:\nmain.leak()\ncreated by main.(*daemon).observe in goroutine 23\n"
	const head = "SIGQUIT: quit\nPC=0x494a01 m=0 sigcode=0\n\n"
	const regs = "\nrax    0xca\nrbx    0x0\n"
	tests := []struct {
		name    string
		dump    string
		want    map[string]int
		wantErr string
	}{
		{"idle", head + "goroutine 0 gp=0x9 m=0 [idle]:\nruntime.futex()\n\n" + main1 + "\n" + loop + "\n" + loop + "\n" + sys + regs,
			map[string]int{mainGoroutine: 1, "github.com/reactord/reactord/reactor.(*Server).Start": 2}, ""},
		{"gathering goroutines are not counted", head + main1 + "\n" + gather + "\n" + gather + regs,
			map[string]int{mainGoroutine: 1}, ""},
		{"a leak is counted", head + main1 + "\n" + leak + regs,
			map[string]int{mainGoroutine: 1, "main.(*daemon).observe": 1}, ""},
		{"no dump", "SIGQUIT: quit\n", nil, "no goroutine"},
		{"no main", head + loop, nil, "main goroutines"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseGoroutineDump(tc.dump)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(s.byCreator, tc.want) {
				t.Fatalf("got %v, want %v", s.byCreator, tc.want)
			}
		})
	}
	idle, _ := parseGoroutineDump(head + main1 + "\n" + loop + regs)
	leaky, _ := parseGoroutineDump(head + main1 + "\n" + loop + "\n" + leak + regs)
	if d := idle.diff(idle); d != "" {
		t.Fatalf("a set differs from itself: %s", d)
	}
	if d := leaky.diff(idle); !strings.Contains(d, "created by main.(*daemon).observe: 1, want 0") || !strings.Contains(d, "main.leak()") {
		t.Fatalf("diff does not show the leak and its stack:\n%s", d)
	}
}
