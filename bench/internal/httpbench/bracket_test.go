package httpbench_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/cli"
	"github.com/reactord/reactord/bench/internal/httpbench"
	"github.com/reactord/reactord/bench/internal/syscount"
)

// asBench makes this test binary stand in for the bench binary: child.Spawn re-executes
// os.Executable() as "serve -control ...", and with this variable set the child runs cli.Main.
const asBench = "BENCH_HTTPBENCH_TEST_AS_BENCH"

func TestMain(m *testing.M) {
	if os.Getenv(asBench) == "1" {
		os.Exit(cli.Main(context.Background(), cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin}, os.Args[1:]))
	}
	if err := os.Setenv(asBench, "1"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// TestBracketCountsNoControlExchange measures an empty window the way runOne does, against
// an idle floor child: the child's allocation count asked for at both ends (a write of the
// answer and a read of the next request in the child each time) must stay out of the counted
// system calls, which then see nothing but, at most, the read the child re-enters after
// answering the first sample. Counted inside, the exchanges added at least their two writes.
func TestBracketCountsNoControlExchange(t *testing.T) {
	p, err := child.Spawn(context.Background(), child.Spec{Server: "floor", Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	c, err := syscount.OpenCounter(p.PID())
	if errors.Is(err, syscount.ErrNoTracepoints) {
		t.Skipf("syscall tracepoints unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for round := 0; round < 5; round++ {
		var io [2]uint64
		var samples int
		start, end := httpbench.Bracket(
			func(bool) {
				if _, _, err := p.Mallocs(); err != nil {
					t.Fatal(err)
				}
				samples++
			},
			func(end bool) {
				i := 0
				if end {
					i = 1
				}
				var err error
				if _, io[i], err = c.Read(); err != nil {
					t.Fatal(err)
				}
			})
		start()
		end()
		if samples != 2 {
			t.Fatalf("%d samples, want one at each end", samples)
		}
		if n := io[1] - io[0]; n > 1 {
			t.Fatalf("round %d: the empty window counted %d I/O calls in the child; the control exchanges are inside it", round, n)
		}
	}
}
