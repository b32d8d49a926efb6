package report

import (
	"github.com/reactord/reactord/bench/internal/loadgen"
	"math"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	runs := []Run{
		{Label: "floor", Round: 1, Pipeline: 1, Requests: 10, RPS: 100, CPUPerReq: 10},
		{Label: "x", Round: 1, Pipeline: 1, Requests: 10, RPS: 110, CPUPerReq: 11},
		{Label: "floor", Round: 2, Pipeline: 1, Requests: 10, RPS: 50, CPUPerReq: 30},
		{Label: "x", Round: 2, Pipeline: 1, Requests: 10, RPS: 40, CPUPerReq: 36},
		{Label: "floor", Round: 3, Pipeline: 1, Requests: 10, RPS: 100, CPUPerReq: 10},
		{Label: "x", Round: 3, Pipeline: 1, Requests: 10, RPS: 90, CPUPerReq: 13, Errors: errs(2)},
		{Label: "x", Round: 1, Pipeline: 16, Requests: 10, RPS: 1000, CPUPerReq: 1},
	}
	sums := Summarize(runs, "floor")
	if len(sums) != 3 {
		t.Fatalf("%d summaries", len(sums))
	}
	x := sums[1]
	if x.Label != "x" || x.Pipeline != 1 || x.Rounds != 3 {
		t.Fatalf("order: %+v", sums)
	}
	// Per-round CPU ratios 1.1, 1.2, 1.3 → median 1.2 (the ratio of medians would be 13/10).
	if math.Abs(x.CPURatio-1.2) > 1e-9 || x.CPUPerReq != 13 || x.Errors != 2 {
		t.Fatalf("x: %+v", x)
	}
	if math.Abs(x.RPSRatio-0.9) > 1e-9 {
		t.Fatalf("rps ratio %v", x.RPSRatio)
	}
	if sums[2].Pipeline != 16 || sums[2].CPURatio != 0 {
		t.Fatalf("no baseline at P=16 must give ratio 0: %+v", sums[2])
	}
	var b strings.Builder
	if err := Markdown(&b, sums, "floor", 64); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"pipeline P=1", "pipeline P=16", "| x | 90 | 13.00 | 1.20 | 0.90 |", "| x | 1000 | 1.00 | – | – |", "| 0.00 | 0.00 | –"} {
		if !strings.Contains(out, want) {
			t.Fatalf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func errs(n uint64) loadgen.Errors { return loadgen.Errors{Status: n} }

func TestRatioTable(t *testing.T) {
	runs := []Run{
		{Label: "a", Round: 1, Pipeline: 1, Requests: 1, CPUPerReq: 10},
		{Label: "b", Round: 1, Pipeline: 1, Requests: 1, CPUPerReq: 20},
		{Label: "c", Round: 1, Pipeline: 1, Requests: 1, CPUPerReq: 5},
	}
	var w strings.Builder
	if err := RatioTable(&w, runs, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| server | × a | × b |", "| c | 0.50 | 0.25 |", "| b | 2.00 | 1.00 |"} {
		if !strings.Contains(w.String(), want) {
			t.Fatalf("lacks %q:\n%s", want, w.String())
		}
	}
}
