package stats

import (
	"errors"
	"math"
	"testing"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3} // sorted: 1 2 3 4 5
	tests := []struct {
		p    float64
		want float64
	}{{0, 1}, {25, 2}, {50, 3}, {90, 4.6}, {100, 5}, {12.5, 1.5}}
	for _, tt := range tests {
		got, err := Percentile(xs, tt.p)
		if err != nil || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("Percentile(%v) = %v, %v; want %v", tt.p, got, err, tt.want)
		}
	}
	if xs[0] != 5 {
		t.Error("input was modified")
	}
	if _, err := Percentile(nil, 50); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	for _, p := range []float64{-1, 101, math.NaN()} {
		if _, err := Percentile(xs, p); !errors.Is(err, ErrBadArgument) {
			t.Errorf("p=%v: %v", p, err)
		}
	}
	if got, _ := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("single = %v", got)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{1, 9}, 5}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got, err := Median(tt.xs); err != nil || got != tt.want {
			t.Errorf("Median(%v) = %v, %v; want %v", tt.xs, got, err, tt.want)
		}
	}
}

func TestRatio(t *testing.T) {
	if r, err := Ratio(3, 2); err != nil || r != 1.5 {
		t.Errorf("Ratio(3,2) = %v, %v", r, err)
	}
	for _, b := range []float64{0, -1, math.NaN()} {
		if _, err := Ratio(1, b); !errors.Is(err, ErrBadArgument) {
			t.Errorf("Ratio(1,%v): %v", b, err)
		}
	}
}

func TestMedianRatio(t *testing.T) {
	// Round 2 is slow for both servers; its ratio is still 1.1. The median of per-round
	// ratios is 1.1, while the ratio of medians would be 11/10 = 1.1 only by chance.
	values := []float64{11, 33, 12, 9}
	bases := []float64{10, 30, 10, 10}
	got, err := MedianRatio(values, bases)
	if err != nil || math.Abs(got-1.1) > 1e-9 {
		t.Fatalf("MedianRatio = %v, %v; want 1.1", got, err)
	}
	// A round whose baseline measured nothing is skipped.
	got, err = MedianRatio([]float64{2, 5}, []float64{1, 0})
	if err != nil || got != 2 {
		t.Fatalf("skip zero baseline: %v, %v", got, err)
	}
	if _, err := MedianRatio([]float64{1}, []float64{0}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("all skipped: %v", err)
	}
	if _, err := MedianRatio([]float64{1, 2}, []float64{1}); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("length mismatch: %v", err)
	}
}
