package wsbench

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// ours is the label of our server in the reports; every other server is a peer.
const ours = "ws-reactord"

// metric is one column of a mode's table.
type metric struct {
	name  string
	value func(Result) float64
	lower bool // lower is better
}

var modeMetrics = map[string][]metric{
	ModeEcho: {
		{"msg/s", func(r Result) float64 { return r.MsgPerSec }, false},
		{"server CPU µs/msg", func(r Result) float64 { return r.CPUPerMsg }, true},
		{"user share", func(r Result) float64 { return r.UserShare }, true},
	},
	ModeBroadcast: {
		{"ms until all have it", func(r Result) float64 { return r.BroadcastMs }, true},
		{"server CPU ms/broadcast", func(r Result) float64 { return r.CPUPerBcastMs }, true},
		{"user share", func(r Result) float64 { return r.UserShare }, true},
	},
	ModeIdle: {
		{"RSS B/conn", func(r Result) float64 { return r.RSSPerConn }, true},
		{"Go heap+stack B/conn", func(r Result) float64 { return r.GoPerConn }, true},
	},
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Markdown writes one table per mode: the median of the rounds per server, and for our server
// its ratio to the best peer in each column (< 1 is better where lower is better).
func Markdown(w io.Writer, results []Result) {
	for _, mode := range []string{ModeEcho, ModeBroadcast, ModeIdle} {
		var labels []string
		byLabel := map[string][]Result{}
		conns := 0
		for _, r := range results {
			if r.Mode != mode {
				continue
			}
			if _, ok := byLabel[r.Label]; !ok {
				labels = append(labels, r.Label)
			}
			byLabel[r.Label] = append(byLabel[r.Label], r)
			conns = r.Conns
		}
		if len(labels) == 0 {
			continue
		}
		ms := modeMetrics[mode]
		rounds := len(byLabel[labels[0]])
		fmt.Fprintf(w, "\n#### %s, %d connections (median of %d rounds)\n\n", mode, conns, rounds)
		head := "| server |"
		sep := "|---|"
		for _, m := range ms {
			head += " " + m.name + " |"
			sep += "---:|"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, sep)
		med := map[string][]float64{}
		for _, l := range labels {
			row := "| " + l + " |"
			for _, m := range ms {
				var xs []float64
				for _, r := range byLabel[l] {
					xs = append(xs, m.value(r))
				}
				v := median(xs)
				med[l] = append(med[l], v)
				row += " " + format(v) + " |"
			}
			fmt.Fprintln(w, row)
		}
		if _, ok := med[ours]; !ok {
			continue
		}
		var parts []string
		for i, m := range ms {
			if m.name == "user share" {
				continue
			}
			best, bestLabel := 0.0, ""
			for _, l := range labels {
				if l == ours {
					continue
				}
				v := med[l][i]
				if bestLabel == "" || (m.lower && v < best) || (!m.lower && v > best) {
					best, bestLabel = v, l
				}
			}
			if bestLabel == "" || best == 0 {
				continue
			}
			// The median of per-round ratios: a round that was slow for every server (the
			// machine is shared) cancels out inside its own ratio.
			var ratios []float64
			for _, r := range byLabel[ours] {
				for _, p := range byLabel[bestLabel] {
					if p.Round == r.Round && m.value(p) != 0 {
						ratios = append(ratios, m.value(r)/m.value(p))
					}
				}
			}
			parts = append(parts, fmt.Sprintf("%s: %.2f× the best peer (%s; median of per-round ratios, range %.2f–%.2f)",
				m.name, median(ratios), bestLabel, minOf(ratios), maxOf(ratios)))
		}
		fmt.Fprintf(w, "\n%s %s.\n", ours, strings.Join(parts, "; "))
	}
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func minOf(xs []float64) float64 {
	m := 0.0
	for i, x := range xs {
		if i == 0 || x < m {
			m = x
		}
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for i, x := range xs {
		if i == 0 || x > m {
			m = x
		}
	}
	return m
}
