package chart

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLinesAndBars(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{".png", ".svg"} {
		f := filepath.Join(dir, "lines"+ext)
		err := Lines(f, "t", "x", "y", true, true, []Line{{Name: "a", Points: []Point{{1, 1}, {10, 2}, {100, 3}}}, {Name: "empty"}})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
		b := filepath.Join(dir, "bars"+ext)
		if err := Bars(b, "t", "y", []string{"a", "b"}, []Group{{Name: "P=1", Values: []float64{1, 2}}, {Name: "P=16", Values: []float64{0.5, 1}}}); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(b); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", b, err)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Lines(filepath.Join(dir, "x.gif"), "", "", "", false, false, []Line{{Name: "a", Points: []Point{{1, 1}}}}); !errors.Is(err, ErrFormat) {
		t.Fatalf("gif: %v", err)
	}
	if err := Lines(filepath.Join(dir, "x.png"), "", "", "", false, false, []Line{{Name: "a"}}); !errors.Is(err, ErrNoData) {
		t.Fatalf("no points: %v", err)
	}
	if err := Lines(filepath.Join(dir, "x.png"), "", "", "", false, true, []Line{{Name: "a", Points: []Point{{1, 0}}}}); !errors.Is(err, ErrNoData) {
		t.Fatalf("zero on log axis: %v", err)
	}
	if err := Bars(filepath.Join(dir, "x.png"), "", "", nil, nil); !errors.Is(err, ErrNoData) {
		t.Fatalf("no bars: %v", err)
	}
	if err := Bars(filepath.Join(dir, "x.png"), "", "", []string{"a"}, []Group{{Name: "g", Values: []float64{1, 2}}}); !errors.Is(err, ErrNoData) {
		t.Fatalf("mismatched: %v", err)
	}
}
