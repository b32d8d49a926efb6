// Package httpbench runs the `http` subcommand's method: each server in a child process pinned
// to its own CPU with its own GOMAXPROCS, the load generator pinned to another, servers
// interleaved within every round (the order rotates from round to round), and the server's
// cost read from /proc around exactly the measured window.
package httpbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/cpupin"
	"github.com/reactord/reactord/bench/internal/loadgen"
	"github.com/reactord/reactord/bench/internal/procstat"
	"github.com/reactord/reactord/bench/internal/progress"
	"github.com/reactord/reactord/bench/internal/report"
	"github.com/reactord/reactord/bench/internal/servers"
	"github.com/reactord/reactord/bench/internal/syscount"
	"github.com/reactord/reactord/bench/internal/tlsconf"
)

// ErrBadConfig is returned for a configuration that cannot run.
var ErrBadConfig = errors.New("httpbench: bad config")

// Target is one server to measure: a registry name and, for our stack, a poller backend.
type Target struct {
	Label  string
	Server string
	Poller string
}

// Config describes a whole `http` run.
type Config struct {
	// Targets are started as child processes. Ignored when Addr is set.
	Targets []Target
	// Addr, when set, is an external server to load instead; PID, if > 0, is its process for
	// the CPU and memory columns.
	Addr string
	PID  int

	Conns     int
	Pipelines []int
	Warmup    time.Duration
	Duration  time.Duration
	Rounds    int

	// ServerCPU and ClientCPU pin the server child and this process; -1 disables pinning.
	ServerCPU int
	ClientCPU int
	// GOMAXPROCS for the server child; 0 inherits.
	GOMAXPROCS int
	// Loops is passed to every server.
	Loops int
	// Upstream is passed to every server: the address reverse proxies forward to.
	Upstream string
	// TLS, when set, is the certificate kind: every server speaks HTTPS (tlsconf) and the load
	// generator handshakes on every connection.
	TLS string
	// NewConns makes every batch use a new connection (a new handshake with TLS).
	NewConns bool
	// Strace adds, after the rounds, one short traced run per server and depth to count
	// syscalls per request with strace -c -f.
	Strace bool
	// CountSyscalls adds, after the rounds, one run per server and depth that counts system
	// calls with the kernel's syscall tracepoints (syscount.Counter). Unlike strace it does
	// not slow the server, so a batching design batches as it really does; but each counted
	// call still costs a little, more for a server that makes more calls, so the counts come
	// from runs of their own and never from the rounds whose CPU time is compared.
	CountSyscalls bool

	// Log receives one line per finished run (nil: none); Stderr the children's logs.
	Log    io.Writer
	Stderr io.Writer
	Bar    *progress.Bar
}

// PlannedDuration is the time the rounds will take, for the progress bar.
func (c Config) PlannedDuration() time.Duration {
	n := len(c.Targets)
	if c.Addr != "" {
		n = 1
	}
	return time.Duration(n*len(c.Pipelines)*c.Rounds) * (c.Warmup + c.Duration)
}

// Run performs every run and returns them in the order they ran.
func Run(ctx context.Context, cfg Config) ([]report.Run, error) {
	if cfg.Conns < 1 || len(cfg.Pipelines) == 0 || cfg.Rounds < 1 || cfg.Duration <= 0 ||
		(cfg.Addr == "" && len(cfg.Targets) == 0) {
		return nil, fmt.Errorf("%w: conns %d pipelines %v rounds %d duration %v targets %d",
			ErrBadConfig, cfg.Conns, cfg.Pipelines, cfg.Rounds, cfg.Duration, len(cfg.Targets))
	}
	if cfg.Strace {
		if err := syscount.Available(); err != nil {
			return nil, err
		}
	}
	if cfg.ClientCPU >= 0 {
		if err := cpupin.Pin(0, cfg.ClientCPU); err != nil {
			return nil, err
		}
		// One CPU for the load generator: more Ps would only contend for it.
		prev := runtime.GOMAXPROCS(1)
		defer func() {
			runtime.GOMAXPROCS(prev)
			_ = cpupin.Unpin(0)
		}()
	}
	var runs []report.Run
	targets := cfg.Targets
	if cfg.Addr != "" {
		targets = []Target{{Label: cfg.Addr}}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, p := range cfg.Pipelines {
			for i := range targets {
				// Rotate the order so that no server always runs first (cold) or last.
				t := targets[(i+round-1)%len(targets)]
				cfg.Bar.Describe(fmt.Sprintf("round %d/%d P=%d %s", round, cfg.Rounds, p, t.Label))
				r, err := runOne(ctx, cfg, t, p, round, modeMeasure)
				if err != nil {
					return runs, fmt.Errorf("%s P=%d round %d: %w", t.Label, p, round, err)
				}
				runs = append(runs, r)
				if cfg.Log != nil {
					fmt.Fprintf(cfg.Log, "round %d P=%-3d %-22s %9.0f req/s %7.2f µs/req CPU  rss %6.1f MiB  p99 %v  errors %d\n",
						round, p, t.Label, r.RPS, r.CPUPerReq, float64(r.RSS)/(1<<20), r.P99.Round(time.Microsecond), r.Errors.Total())
				}
				cfg.Bar.Step(cfg.Warmup + cfg.Duration)
			}
		}
	}
	if cfg.CountSyscalls {
		for _, p := range cfg.Pipelines {
			for _, t := range targets {
				r, err := countedRun(ctx, cfg, t, p)
				if err != nil {
					return runs, fmt.Errorf("count %s P=%d: %w", t.Label, p, err)
				}
				for i := range runs {
					if runs[i].Label == t.Label && runs[i].Pipeline == p {
						runs[i].CountedSyscallsPerReq, runs[i].CountedIOSyscallsPerReq = r.CountedSyscallsPerReq, r.CountedIOSyscallsPerReq
					}
				}
				if cfg.Log != nil {
					fmt.Fprintf(cfg.Log, "count   P=%-3d %-22s %.2f syscalls/req (%.2f I/O)\n", p, t.Label, r.CountedSyscallsPerReq, r.CountedIOSyscallsPerReq)
				}
			}
		}
	}
	if cfg.Strace {
		for _, p := range cfg.Pipelines {
			for _, t := range targets {
				r, err := runOne(ctx, cfg, t, p, 0, modeTraced)
				if err != nil {
					return runs, fmt.Errorf("strace %s P=%d: %w", t.Label, p, err)
				}
				for i := range runs {
					if runs[i].Label == t.Label && runs[i].Pipeline == p {
						runs[i].SyscallsPerReq, runs[i].IOSyscallsPerReq, runs[i].Syscalls = r.SyscallsPerReq, r.IOSyscallsPerReq, r.Syscalls
					}
				}
				if cfg.Log != nil {
					fmt.Fprintf(cfg.Log, "strace  P=%-3d %-22s %.2f syscalls/req (%.2f I/O) %v\n", p, t.Label, r.SyscallsPerReq, r.IOSyscallsPerReq, r.Syscalls)
				}
			}
		}
	}
	return runs, nil
}

// countedTries bounds the counted runs made for one server and pipeline depth.
const countedTries = 3

// countedRun makes a counted run (modeCounted), again when its window held no answered
// request: a stalled machine can leave a short window empty, and a count divided by no
// requests is no figure (it was reported as 0.00 calls per request). It fails after
// countedTries empty windows rather than report one.
func countedRun(ctx context.Context, cfg Config, t Target, pipeline int) (report.Run, error) {
	for try := 1; ; try++ {
		r, err := runOne(ctx, cfg, t, pipeline, 0, modeCounted)
		if err != nil || r.Requests > 0 {
			return r, err
		}
		if try == countedTries {
			return r, fmt.Errorf("no request answered in %d counted windows of %v", countedTries, cfg.Duration)
		}
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "count   P=%-3d %-22s no request answered in the window; again\n", pipeline, t.Label)
		}
	}
}

// runMode is what one run is for.
type runMode int

const (
	modeMeasure runMode = iota // a round: CPU, memory, latency, throughput
	modeTraced                 // strace -c -f attached: syscall counts only
	modeCounted                // syscall tracepoints counted: syscall counts only
)

// runOne measures one server once. Traced and counted runs record only syscall counts.
func runOne(ctx context.Context, cfg Config, t Target, pipeline, round int, mode runMode) (report.Run, error) {
	traced := mode == modeTraced
	addr, pid := cfg.Addr, cfg.PID
	var proc *child.Proc
	if cfg.Addr == "" {
		var err error
		proc, err = child.Spawn(ctx, child.Spec{Server: t.Server, Poller: t.Poller, Loops: cfg.Loops,
			GOMAXPROCS: cfg.GOMAXPROCS, Stderr: cfg.Stderr, Upstream: cfg.Upstream, TLS: cfg.TLS})
		if err != nil {
			return report.Run{}, err
		}
		defer proc.Stop()
		addr, pid = proc.Addr(), proc.PID()
		if cfg.ServerCPU >= 0 {
			if err := cpupin.Pin(pid, cfg.ServerCPU); err != nil {
				return report.Run{}, err
			}
		}
	}
	run := report.Run{Label: t.Label, Server: t.Server, Poller: t.Poller, Round: round, Conns: cfg.Conns, Pipeline: pipeline}
	// System calls counted in the measured window (syscall tracepoints; see syscount.Counter).
	var counter *syscount.Counter
	var calls0, calls1, io0calls, io1calls uint64
	if mode == modeCounted {
		c, err := syscount.OpenCounter(pid)
		if err != nil {
			return run, err
		}
		counter = c
		defer c.Close()
	}
	var cpu0, cpu1 procstat.CPU
	var io0, io1 procstat.IO
	var mallocs [2]uint64
	goServer := proc != nil
	var sampleErr error
	sample := func(cpu *procstat.CPU, io *procstat.IO, m *uint64) {
		if pid <= 0 {
			return
		}
		var err error
		if goServer {
			var ok bool
			if *m, ok, err = proc.Mallocs(); err != nil && sampleErr == nil {
				sampleErr = err
			}
			goServer = ok
		}
		if *cpu, err = procstat.ReadCPU(pid); err != nil && sampleErr == nil {
			sampleErr = err
		}
		if *io, err = procstat.ReadIO(pid); err != nil && sampleErr == nil {
			sampleErr = err
		}
	}
	count := func(all, io *uint64) {
		if counter != nil {
			var err error
			if *all, *io, err = counter.Read(); err != nil {
				// Reported, not dropped: a run whose counter failed has no count, and
				// leaving its columns at zero would read as "no system calls".
				counter = nil
				if sampleErr == nil {
					sampleErr = err
				}
			}
		}
	}
	lc := loadgen.Config{
		Addr: addr, Conns: cfg.Conns, Pipeline: pipeline, Warmup: cfg.Warmup, Duration: cfg.Duration,
		ExpectBody: []byte(servers.Body),
		Progress:   cfg.Bar.At,
		NewConns:   cfg.NewConns,
	}
	if cfg.TLS != "" {
		lc.TLS = tlsconf.Client()
	}
	lc.MeasureStart, lc.MeasureEnd = bracket(
		func(end bool) {
			if !end {
				sample(&cpu0, &io0, &mallocs[0])
				return
			}
			sample(&cpu1, &io1, &mallocs[1])
			if pid > 0 {
				if rss, err := procstat.ReadRSS(pid); err == nil {
					run.RSS = rss
				}
			}
		},
		func(end bool) {
			if !end {
				count(&calls0, &io0calls)
			} else {
				count(&calls1, &io1calls)
			}
		})
	var tracer *syscount.Tracer
	if traced {
		var err error
		if tracer, err = syscount.Attach(pid); err != nil {
			return run, err
		}
		// The traced window is the whole load: no warm-up, so every traced call belongs to a
		// counted request (up to the C·P in flight when it stops).
		lc.Warmup, lc.Duration, lc.Progress = 0, min(cfg.Duration, 2*time.Second), nil
	}
	res, err := loadgen.Run(ctx, lc)
	if tracer != nil {
		sum, terr := tracer.Detach()
		if err == nil && terr != nil {
			err = terr
		}
		if res != nil && res.Requests > 0 {
			run.SyscallsPerReq = float64(sum.Total) / float64(res.Requests)
			run.IOSyscallsPerReq = float64(sum.IOTotal()) / float64(res.Requests)
			run.Syscalls = sum.Calls
		}
	}
	if err != nil {
		return run, err
	}
	if sampleErr != nil {
		return run, sampleErr
	}
	run.Requests, run.RPS = res.Requests, res.RPS
	run.P50, run.P99, run.P999 = res.P50, res.P99, res.P999
	run.Errors = res.Errors
	if res.Requests > 0 && pid > 0 {
		run.CPUPerReq = float64(cpu1.Sub(cpu0).Total()) / 1e3 / float64(res.Requests)
		d := io1.Sub(io0)
		run.RWCallsPerReq = float64(d.ReadCalls+d.WriteCalls) / float64(res.Requests)
		if counter != nil {
			run.CountedSyscallsPerReq = float64(calls1-calls0) / float64(res.Requests)
			run.CountedIOSyscallsPerReq = float64(io1calls-io0calls) / float64(res.Requests)
		}
	}
	run.AllocsPerReq = -1
	if goServer && res.Requests > 0 {
		run.AllocsPerReq = float64(mallocs[1]-mallocs[0]) / float64(res.Requests)
	}
	return run, nil
}

// bracket makes a measured window's start and end hooks from sample (CPU time, I/O counters,
// the child's allocation count; end false at the start) and count (the syscall counters).
// Counting starts after the first sample and stops before the last: asking a child for its
// allocation count is a control-pipe exchange (a read and a write in the child, and the read
// it then waits in), which counted inside the window would add its calls to the server's.
// In a window a stalled machine left with a handful of requests those calls were most of the
// count (floor-uring once showed 6.50 I/O calls per request, a few times floor's).
func bracket(sample, count func(end bool)) (start, end func()) {
	return func() { sample(false); count(false) }, func() { count(true); sample(true) }
}
