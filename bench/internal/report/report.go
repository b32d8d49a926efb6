// Package report turns per-round HTTP measurements into the per-server summary the harness
// prints: medians over rounds, and ratios against a baseline server computed round by round
// and then reduced to their median, so that a round in which the machine was slow for
// everyone cancels out inside its own ratio.
package report

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/reactord/reactord/bench/internal/loadgen"
	"github.com/reactord/reactord/bench/internal/stats"
)

// Run is one server measured once (one round) at one pipelining depth.
type Run struct {
	Label    string `json:"label"` // server name, with "/poller" for our stack's backends
	Server   string `json:"server"`
	Poller   string `json:"poller,omitempty"`
	Round    int    `json:"round"`
	Conns    int    `json:"conns"`
	Pipeline int    `json:"pipeline"`

	Requests uint64  `json:"requests"`
	RPS      float64 `json:"rps"`
	// CPUPerReq is the server's utime+stime over the measured window divided by Requests, in
	// microseconds.
	CPUPerReq float64 `json:"cpu_us_per_req"`
	// RSS is the server's VmRSS at the end of the window, in bytes.
	RSS int64 `json:"rss_bytes"`
	// RWCallsPerReq is read-family plus write-family syscalls per request, from /proc/PID/io
	// (epoll_wait and sendmsg/recvmsg are not counted there).
	RWCallsPerReq float64 `json:"rw_syscalls_per_req"`
	// AllocsPerReq is Go heap allocations in the server per request over the measured window
	// (runtime.MemStats.Mallocs); -1 for a server that is not a Go program.
	AllocsPerReq float64        `json:"allocs_per_req"`
	P50          time.Duration  `json:"p50_ns"`
	P99          time.Duration  `json:"p99_ns"`
	P999         time.Duration  `json:"p999_ns"`
	Errors       loadgen.Errors `json:"errors"`
	// CountedSyscallsPerReq is every system call of the server per request over the measured
	// window, counted by the kernel's syscall tracepoints (no slowdown, unlike strace);
	// CountedIOSyscallsPerReq only the I/O calls (see syscount.IOTotal). 0 where the
	// tracepoints cannot be used.
	CountedSyscallsPerReq   float64 `json:"counted_syscalls_per_req,omitempty"`
	CountedIOSyscallsPerReq float64 `json:"counted_io_syscalls_per_req,omitempty"`
	// SyscallsPerReq comes from a separate strace -c -f run, when asked for; 0 otherwise.
	SyscallsPerReq float64 `json:"syscalls_per_req,omitempty"`
	// IOSyscallsPerReq counts only reads, writes and readiness calls (see syscount.IOTotal).
	IOSyscallsPerReq float64           `json:"io_syscalls_per_req,omitempty"`
	Syscalls         map[string]uint64 `json:"syscalls,omitempty"`
}

// Summary is one server at one pipelining depth over all rounds.
type Summary struct {
	Label    string `json:"label"`
	Pipeline int    `json:"pipeline"`
	Rounds   int    `json:"rounds"`

	RPS           float64       `json:"rps_median"`
	CPUPerReq     float64       `json:"cpu_us_per_req_median"`
	RSS           int64         `json:"rss_bytes_median"`
	RWCallsPerReq float64       `json:"rw_syscalls_per_req_median"`
	AllocsPerReq  float64       `json:"allocs_per_req_median"`
	P50           time.Duration `json:"p50_ns_median"`
	P99           time.Duration `json:"p99_ns_median"`
	P999          time.Duration `json:"p999_ns_median"`
	Errors        uint64        `json:"errors_total"`
	// CPURatio and RPSRatio are medians of per-round ratios against the baseline server; 0
	// when the baseline was not measured in the same rounds.
	CPURatio         float64 `json:"cpu_ratio_vs_baseline"`
	RPSRatio         float64 `json:"rps_ratio_vs_baseline"`
	SyscallsPerReq   float64 `json:"syscalls_per_req,omitempty"`
	IOSyscallsPerReq float64 `json:"io_syscalls_per_req,omitempty"`
	// CountedSyscallsPerReq and CountedIOSyscallsPerReq are medians over rounds of the
	// tracepoint counts (see Run).
	CountedSyscallsPerReq   float64 `json:"counted_syscalls_per_req_median,omitempty"`
	CountedIOSyscallsPerReq float64 `json:"counted_io_syscalls_per_req_median,omitempty"`
}

// Summarize groups runs by (pipeline, label) and computes medians and per-round ratios against
// baseline (a Label). The result is ordered by pipeline, then by first appearance of label.
func Summarize(runs []Run, baseline string) []Summary {
	type key struct {
		p     int
		label string
	}
	var order []key
	byKey := map[key][]Run{}
	for _, r := range runs {
		k := key{r.Pipeline, r.Label}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	slices.SortStableFunc(order, func(a, b key) int { return cmp.Compare(a.p, b.p) })

	var out []Summary
	for _, k := range order {
		rs := byKey[k]
		s := Summary{Label: k.label, Pipeline: k.p, Rounds: len(rs)}
		col := func(f func(Run) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			m, _ := stats.Median(xs)
			return m
		}
		s.RPS = col(func(r Run) float64 { return r.RPS })
		s.CPUPerReq = col(func(r Run) float64 { return r.CPUPerReq })
		s.RSS = int64(col(func(r Run) float64 { return float64(r.RSS) }))
		s.RWCallsPerReq = col(func(r Run) float64 { return r.RWCallsPerReq })
		s.AllocsPerReq = col(func(r Run) float64 { return r.AllocsPerReq })
		s.CountedSyscallsPerReq = col(func(r Run) float64 { return r.CountedSyscallsPerReq })
		s.CountedIOSyscallsPerReq = col(func(r Run) float64 { return r.CountedIOSyscallsPerReq })
		s.P50 = time.Duration(col(func(r Run) float64 { return float64(r.P50) }))
		s.P99 = time.Duration(col(func(r Run) float64 { return float64(r.P99) }))
		s.P999 = time.Duration(col(func(r Run) float64 { return float64(r.P999) }))
		for _, r := range rs {
			s.Errors += r.Errors.Total()
			if r.SyscallsPerReq > 0 {
				s.SyscallsPerReq, s.IOSyscallsPerReq = r.SyscallsPerReq, r.IOSyscallsPerReq
			}
		}
		if base, ok := byKey[key{k.p, baseline}]; ok {
			var vc, bc, vr, br []float64
			for _, r := range rs {
				for _, b := range base {
					if b.Round == r.Round && r.Requests > 0 && b.Requests > 0 {
						vc, bc = append(vc, r.CPUPerReq), append(bc, b.CPUPerReq)
						vr, br = append(vr, r.RPS), append(br, b.RPS)
					}
				}
			}
			if m, err := stats.MedianRatio(vc, bc); err == nil {
				s.CPURatio = m
			}
			if m, err := stats.MedianRatio(vr, br); err == nil {
				s.RPSRatio = m
			}
		}
		out = append(out, s)
	}
	return out
}

// Markdown writes one table per pipelining depth.
func Markdown(w io.Writer, sums []Summary, baseline string, conns int) error {
	var b strings.Builder
	last := -1
	counted := false
	for _, s := range sums {
		if s.Pipeline != last {
			if last >= 0 {
				b.WriteString("\n")
			}
			last = s.Pipeline
			fmt.Fprintf(&b, "### C=%d, pipeline P=%d (median of %d rounds; ratios: median of per-round ratios vs %s)\n\n",
				conns, s.Pipeline, s.Rounds, baseline)
			b.WriteString("| server | req/s | server CPU µs/req | CPU × " + baseline + " | req/s × " + baseline +
				" | RSS MiB | rd+wr calls/req | allocs/req | p50 | p99 | p99.9 | errors |")
			hasStrace, hasCount := false, false
			for _, t := range sums {
				if t.Pipeline == s.Pipeline {
					hasStrace = hasStrace || t.SyscallsPerReq > 0
					hasCount = hasCount || t.CountedSyscallsPerReq > 0
				}
			}
			sep := "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
			if hasCount {
				b.WriteString(" syscalls/req | I/O syscalls/req |")
				sep += "---:|---:|"
			}
			if hasStrace {
				b.WriteString(" strace calls/req | strace I/O calls/req |")
				sep += "---:|---:|"
			}
			b.WriteString("\n" + sep + "\n")
			counted = hasCount
		}
		allocs := "–"
		if s.AllocsPerReq >= 0 {
			allocs = fmt.Sprintf("%.2f", s.AllocsPerReq)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %s | %s | %.1f | %.2f | %s | %s | %s | %s | %d |",
			s.Label, s.RPS, s.CPUPerReq, ratio(s.CPURatio), ratio(s.RPSRatio), float64(s.RSS)/(1<<20),
			s.RWCallsPerReq, allocs, dur(s.P50), dur(s.P99), dur(s.P999), s.Errors)
		if counted {
			fmt.Fprintf(&b, " %.2f | %.2f |", s.CountedSyscallsPerReq, s.CountedIOSyscallsPerReq)
		}
		if s.SyscallsPerReq > 0 {
			fmt.Fprintf(&b, " %.2f | %.2f |", s.SyscallsPerReq, s.IOSyscallsPerReq)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ratio(r float64) string {
	if r <= 0 || math.IsNaN(r) {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
}

// RatioTable writes, per pipelining depth, each server's server-CPU ratio against every one of
// baselines: the medians of per-round ratios, as Summarize computes them for one baseline.
// It is the table a target such as "≤ 0.85× fasthttp" is read from.
func RatioTable(w io.Writer, runs []Run, baselines []string) error {
	per := make([][]Summary, len(baselines))
	for i, b := range baselines {
		per[i] = Summarize(runs, b)
	}
	if len(per) == 0 || len(per[0]) == 0 {
		return nil
	}
	var b strings.Builder
	last := -1
	for j, s := range per[0] {
		if s.Pipeline != last {
			if last >= 0 {
				b.WriteString("\n")
			}
			last = s.Pipeline
			fmt.Fprintf(&b, "### Server CPU per request as a ratio, P=%d (median of per-round ratios; < 1 is cheaper)\n\n| server |", s.Pipeline)
			for _, name := range baselines {
				fmt.Fprintf(&b, " × %s |", name)
			}
			b.WriteString("\n|---|" + strings.Repeat("---:|", len(baselines)) + "\n")
		}
		fmt.Fprintf(&b, "| %s |", s.Label)
		for i := range baselines {
			fmt.Fprintf(&b, " %s |", ratio(per[i][j].CPURatio))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
