// Package stats holds the small pieces of arithmetic the harness reports with: percentiles of
// a sample, medians, and ratios against a baseline. They are kept apart from the code that
// measures so that tests can check the maths on known inputs.
package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrEmpty is returned when a statistic is asked of an empty sample.
var ErrEmpty = errors.New("stats: empty sample")

// ErrBadArgument is returned for a percentile outside [0, 100], a NaN, or a zero or negative
// baseline in Ratio.
var ErrBadArgument = errors.New("stats: bad argument")

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of xs by linear interpolation between
// the closest ranks (the method spreadsheets call PERCENTILE.INC). xs is not modified.
func Percentile(xs []float64, p float64) (float64, error) {
	if len(xs) == 0 {
		return 0, ErrEmpty
	}
	if math.IsNaN(p) || p < 0 || p > 100 {
		return 0, fmt.Errorf("stats: percentile %v: %w", p, ErrBadArgument)
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 1 {
		return s[0], nil
	}
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	frac := rank - float64(lo)
	return s[lo] + (s[hi]-s[lo])*frac, nil
}

// Median returns the middle value of xs (the mean of the two middle values for an even
// count). xs is not modified.
func Median(xs []float64) (float64, error) {
	return Percentile(xs, 50)
}

// Ratio returns value/baseline. A baseline that is zero, negative or NaN gives ErrBadArgument,
// because a ratio against it means nothing.
func Ratio(value, baseline float64) (float64, error) {
	if math.IsNaN(value) || math.IsNaN(baseline) || baseline <= 0 {
		return 0, fmt.Errorf("stats: ratio %v/%v: %w", value, baseline, ErrBadArgument)
	}
	return value / baseline, nil
}

// MedianRatio pairs values[i] with baselines[i] (one pair per round, measured in the same
// round), computes each ratio and returns their median. This is the figure the harness quotes:
// on a noisy machine a round that is slow for everyone cancels out inside its own ratio.
// Pairs whose baseline is not positive are skipped; if none is left it returns ErrEmpty.
func MedianRatio(values, baselines []float64) (float64, error) {
	if len(values) != len(baselines) {
		return 0, fmt.Errorf("stats: %d values vs %d baselines: %w", len(values), len(baselines), ErrBadArgument)
	}
	rs := make([]float64, 0, len(values))
	for i := range values {
		r, err := Ratio(values[i], baselines[i])
		if err != nil {
			continue
		}
		rs = append(rs, r)
	}
	return Median(rs)
}
