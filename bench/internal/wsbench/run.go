package wsbench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"time"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/cpupin"
	"github.com/reactord/reactord/bench/internal/procstat"
)

// Modes of a run.
const (
	ModeEcho      = "echo"
	ModeBroadcast = "broadcast"
	ModeIdle      = "idle"
)

// Config describes a whole `ws` run.
type Config struct {
	Servers []string // registry names (ws-...)
	Modes   []string

	EchoConns      int
	Warmup         time.Duration
	Duration       time.Duration
	BroadcastConns int
	Broadcasts     int // per round
	IdleConns      int
	Rounds         int

	// ServerCPU and ClientCPU pin the server child and this process; -1 disables pinning.
	ServerCPU, ClientCPU int
	GOMAXPROCS           int // for the server child; 0 inherits
	Loops                int

	Log    io.Writer // one line per finished run; nil: none
	Stderr io.Writer // the children's logs
}

// Result is one server's measurement in one mode and round.
type Result struct {
	Label string `json:"label"`
	Mode  string `json:"mode"`
	Round int    `json:"round"`
	Conns int    `json:"conns"`

	// echo
	Messages  int64   `json:"messages,omitempty"`
	MsgPerSec float64 `json:"msg_per_sec,omitempty"`
	// CPUPerMsg is the server's CPU time per message echoed, in µs.
	CPUPerMsg float64 `json:"cpu_us_per_msg,omitempty"`

	// broadcast: the median time until every connection had the message, and the server's
	// CPU time per broadcast, in ms.
	BroadcastMs    float64 `json:"broadcast_ms,omitempty"`
	CPUPerBcastMs  float64 `json:"cpu_ms_per_broadcast,omitempty"`
	BroadcastCount int     `json:"broadcasts,omitempty"`

	// UserShare is the part of the server's CPU time spent in user space (the rest is the
	// kernel: TCP, epoll, scheduling), echo and broadcast.
	UserShare float64 `json:"user_share,omitempty"`

	// idle
	RSSPerConn float64 `json:"rss_bytes_per_conn,omitempty"`
	GoPerConn  float64 `json:"go_heap_stack_per_conn,omitempty"`
	RSSAfter   int64   `json:"rss_after,omitempty"`
}

// Run performs every run and returns them in the order they ran.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if len(cfg.Servers) == 0 || len(cfg.Modes) == 0 || cfg.Rounds < 1 {
		return nil, fmt.Errorf("%w: servers %v modes %v rounds %d", ErrBadConfig, cfg.Servers, cfg.Modes, cfg.Rounds)
	}
	if _, err := cpupin.RaiseNoFile(uint64(max(cfg.IdleConns, cfg.BroadcastConns, cfg.EchoConns)*2 + 1024)); err != nil {
		return nil, err
	}
	if cfg.ClientCPU >= 0 {
		if err := cpupin.Pin(0, cfg.ClientCPU); err != nil {
			return nil, err
		}
		prev := runtime.GOMAXPROCS(1)
		defer func() {
			runtime.GOMAXPROCS(prev)
			_ = cpupin.Unpin(0)
		}()
	}
	var out []Result
	for round := 1; round <= cfg.Rounds; round++ {
		for _, mode := range cfg.Modes {
			for i := range cfg.Servers {
				// Rotate the order so that no server always runs first (cold) or last.
				name := cfg.Servers[(i+round-1)%len(cfg.Servers)]
				r, err := runOne(ctx, cfg, name, mode, round)
				if err != nil {
					return out, fmt.Errorf("%s %s round %d: %w", name, mode, round, err)
				}
				out = append(out, r)
				if cfg.Log != nil {
					fmt.Fprintln(cfg.Log, logLine(r))
				}
			}
		}
	}
	return out, nil
}

func logLine(r Result) string {
	switch r.Mode {
	case ModeEcho:
		return fmt.Sprintf("round %d echo      %-12s C=%d %9.0f msg/s %7.2f µs CPU/msg (%2.0f%% user)", r.Round, r.Label, r.Conns, r.MsgPerSec, r.CPUPerMsg, 100*r.UserShare)
	case ModeBroadcast:
		return fmt.Sprintf("round %d broadcast %-12s N=%d %8.2f ms to all %8.2f ms CPU each (%2.0f%% user, %d broadcasts)", r.Round, r.Label, r.Conns, r.BroadcastMs, r.CPUPerBcastMs, 100*r.UserShare, r.BroadcastCount)
	default:
		return fmt.Sprintf("round %d idle      %-12s N=%d %8.0f B RSS/conn %8.0f B Go heap+stack/conn (RSS %.1f MiB)", r.Round, r.Label, r.Conns, r.RSSPerConn, r.GoPerConn, float64(r.RSSAfter)/(1<<20))
	}
}

func runOne(ctx context.Context, cfg Config, name, mode string, round int) (Result, error) {
	res := Result{Label: name, Mode: mode, Round: round}
	proc, err := child.Spawn(ctx, child.Spec{Server: name, Loops: cfg.Loops, GOMAXPROCS: cfg.GOMAXPROCS, Stderr: cfg.Stderr})
	if err != nil {
		return res, err
	}
	defer proc.Stop()
	pid := proc.PID()
	if cfg.ServerCPU >= 0 {
		if err := cpupin.Pin(pid, cfg.ServerCPU); err != nil {
			return res, err
		}
	}
	switch mode {
	case ModeEcho:
		res.Conns = cfg.EchoConns
		conns, err := dialMany(ctx, proc.Addr(), cfg.EchoConns)
		if err != nil {
			return res, err
		}
		defer closeAll(conns)
		var c0, c1 procstat.CPU
		var serr error
		r, err := runEcho(ctx, conns, cfg.Warmup, cfg.Duration,
			func() { c0, serr = procstat.ReadCPU(pid) },
			func() {
				var e error
				if c1, e = procstat.ReadCPU(pid); serr == nil {
					serr = e
				}
			})
		if err != nil {
			return res, err
		}
		if serr != nil {
			return res, serr
		}
		res.Messages = r.Messages
		if r.Messages > 0 {
			res.MsgPerSec = float64(r.Messages) / r.Elapsed.Seconds()
			res.CPUPerMsg = float64(c1.Sub(c0).Total()) / 1e3 / float64(r.Messages)
			res.UserShare = userShare(c1.Sub(c0))
		}
	case ModeBroadcast:
		res.Conns = cfg.BroadcastConns
		conns, err := dialMany(ctx, proc.Addr(), cfg.BroadcastConns)
		if err != nil {
			return res, err
		}
		defer closeAll(conns)
		// Every connection answers an echo first (so the server has added it to its broadcast
		// set), then one broadcast to warm up, then the measured ones.
		if err := echoEach(ctx, conns); err != nil {
			return res, err
		}
		if _, err := runBroadcast(ctx, conns, 1); err != nil {
			return res, err
		}
		c0, err := procstat.ReadCPU(pid)
		if err != nil {
			return res, err
		}
		times, err := runBroadcast(ctx, conns, cfg.Broadcasts)
		if err != nil {
			return res, err
		}
		c1, err := procstat.ReadCPU(pid)
		if err != nil {
			return res, err
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		res.BroadcastCount = len(times)
		res.BroadcastMs = float64(times[len(times)/2]) / 1e6
		res.CPUPerBcastMs = float64(c1.Sub(c0).Total()) / 1e6 / float64(len(times))
		res.UserShare = userShare(c1.Sub(c0))
	case ModeIdle:
		res.Conns = cfg.IdleConns
		warm, err := dialMany(ctx, proc.Addr(), 1)
		if err != nil {
			return res, err
		}
		defer closeAll(warm)
		settle(pid)
		before, err := proc.Stats()
		if err != nil {
			return res, err
		}
		rss0, err := procstat.ReadRSS(pid)
		if err != nil {
			return res, err
		}
		conns, err := dialMany(ctx, proc.Addr(), cfg.IdleConns)
		if err != nil {
			return res, err
		}
		defer closeAll(conns)
		settle(pid)
		after, err := proc.Stats()
		if err != nil {
			return res, err
		}
		rss1, err := procstat.ReadRSS(pid)
		if err != nil {
			return res, err
		}
		res.RSSAfter = rss1
		res.RSSPerConn = float64(rss1-rss0) / float64(cfg.IdleConns)
		res.GoPerConn = (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / float64(cfg.IdleConns)
	default:
		return res, fmt.Errorf("%w: mode %q", ErrBadConfig, mode)
	}
	return res, nil
}

func userShare(c procstat.CPU) float64 {
	if c.Total() <= 0 {
		return 0
	}
	return float64(c.User) / float64(c.Total())
}

// settle waits until the server's CPU time stops growing, at most 3s.
func settle(pid int) {
	deadline := time.Now().Add(3 * time.Second)
	last, _ := procstat.ReadCPU(pid)
	for time.Now().Before(deadline) {
		time.Sleep(150 * time.Millisecond)
		cur, err := procstat.ReadCPU(pid)
		if err != nil || cur == last {
			return
		}
		last = cur
	}
}
