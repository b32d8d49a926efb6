package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/reactord/reactord/bench/internal/chart"
	"github.com/reactord/reactord/bench/internal/cpupin"
	"github.com/reactord/reactord/bench/internal/pollbench"
	"github.com/reactord/reactord/bench/internal/progress"
	"github.com/reactord/reactord/poller"
)

// pollerRow is one backend at one N: a result or why there is none.
type pollerRow struct {
	pollbench.Result
	Skipped string `json:"skipped,omitempty"`
}

func runPollers(ctx context.Context, env Env, args []string) error {
	var names []string
	for _, b := range poller.Backends() {
		names = append(names, b.Name)
	}
	fs := newFlags(env, "pollers", "[-backends LIST] [-n LIST] [-active A] [-writes W] [-runs R] [-chart FILE] [-json FILE]", `
The shape of libevent's bench.c: N socketpairs all watched for reading, A of them written at the
start of each run, then a chain in which every byte read writes one byte to the next pair until
W writes have fired. Only dispatching is timed (non-blocking Wait calls and the one-byte reads
and writes they trigger); the table gives the median over R runs of the time per dispatch and
per run. Expected shape: epoll flat as N grows, poll and select growing with N (select stops at
FD_SETSIZE, 1024 descriptors). N is capped by RLIMIT_NOFILE, which is raised first.`)
	backends := fs.String("backends", strings.Join(names, ","), "comma-separated poller `backends`")
	ns := fs.String("n", "100,1000,5000,10000,20000", "comma-separated socketpair `counts` N")
	active := fs.Int("active", 1, "active pairs A per run")
	writes := fs.Int("writes", 1000, "chained writes W per run (bench.c uses N; fixed keeps large N quick)")
	runs := fs.Int("runs", 15, "runs R per point (median reported)")
	chartFile := fs.String("chart", "", "write a chart to `file` (.png, .svg or .pdf)")
	jsonFile := fs.String("json", "", "write results as JSON to `file` (- for stdout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	counts, err := intList(*ns, 1)
	if err != nil {
		return err
	}
	if *active < 1 || *writes < 1 || *runs < 1 {
		return fmt.Errorf("%w: -active, -writes and -runs must be ≥ 1", ErrUsage)
	}
	limit, err := cpupin.RaiseNoFile(uint64(2*counts[len(counts)-1] + 64))
	if err != nil {
		return err
	}
	// Points past the descriptor limit are replaced by one point at the largest N that fits,
	// so the chart still reaches as far as this machine allows.
	counts = capCounts(counts, int(limit))
	bes := stringList(*backends)
	bar := progress.New(time.Duration(len(bes)*len(counts))*time.Second, "pollers")
	defer bar.Finish()
	var rows []pollerRow
	for _, be := range bes {
		for _, n := range counts {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			bar.Describe(fmt.Sprintf("pollers %s N=%d", be, n))
			row := pollerRow{Result: pollbench.Result{Backend: be, Pairs: n, Active: min(*active, n)}}
			if uint64(2*n+32) > limit {
				row.Skipped = fmt.Sprintf("RLIMIT_NOFILE %d", limit)
			} else {
				res, err := pollbench.Run(pollbench.Config{Backend: be, Pairs: n, Active: min(*active, n), Writes: *writes, Runs: *runs})
				if err != nil {
					row.Skipped = err.Error()
				} else {
					row.Result = res
				}
			}
			rows = append(rows, row)
			bar.Step(time.Second)
		}
	}
	bar.Finish()
	if err := pollerTable(env.Stdout, rows, limit, *active, *writes, *runs); err != nil {
		return err
	}
	if err := writeFileOrStdout(env, *jsonFile, func(w io.Writer) error {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(rows)
	}); err != nil {
		return err
	}
	if *chartFile != "" {
		var lines []chart.Line
		for _, be := range bes {
			l := chart.Line{Name: be}
			for _, r := range rows {
				if r.Backend == be && r.Skipped == "" {
					l.Points = append(l.Points, chart.Point{X: float64(r.Pairs), Y: float64(r.PerDispatch) / 1e3})
				}
			}
			lines = append(lines, l)
		}
		title := fmt.Sprintf("Poller dispatch cost vs watched fds (A=%d active, %d chained writes)", *active, *writes)
		if err := chart.Lines(*chartFile, title, "socketpairs watched (N)", "µs per dispatch (log scale)", true, true, lines); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "\nchart: %s\n", *chartFile)
	}
	return nil
}

func pollerTable(w io.Writer, rows []pollerRow, limit uint64, active, writes, runs int) error {
	fmt.Fprintf(w, "pollers: A=%d active, W=%d chained writes, median of %d runs, RLIMIT_NOFILE %d\n\n", active, writes, runs, limit)
	fmt.Fprintln(w, "| backend | N | µs/dispatch | µs/run | dispatches/run |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "| %s | %d | n/a | n/a | (%s) |\n", r.Backend, r.Pairs, oneLine(r.Skipped))
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.2f | %.0f | %d |\n", r.Backend, r.Pairs,
			float64(r.PerDispatch)/1e3, float64(r.PerRun)/1e3, r.Dispatches)
	}
	_, err := fmt.Fprintln(w)
	return err
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// capCounts replaces every N whose 2·N descriptors (plus slack for the poller and stdio) do
// not fit under limit by a single N that does.
func capCounts(counts []int, limit int) []int {
	fit := (limit - 64) / 2
	var out []int
	capped := false
	for _, n := range counts {
		if n <= fit {
			out = append(out, n)
		} else if !capped && fit > 0 {
			capped = true
			if len(out) == 0 || out[len(out)-1] != fit {
				out = append(out, fit)
			}
		}
	}
	return out
}
