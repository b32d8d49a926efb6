// Package chart draws the harness's figures with gonum/plot: a line chart for poller scaling
// and a grouped bar chart for per-server HTTP figures. The file name's extension picks the
// format (.png, .svg, .pdf).
package chart

import (
	"errors"
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// ErrNoData is returned when there is nothing to draw.
var ErrNoData = errors.New("chart: no data")

// ErrFormat is returned for a file name whose extension gonum/plot cannot write.
var ErrFormat = errors.New("chart: unsupported file format (use .png, .svg or .pdf)")

// Point is one (x, y) value of a line.
type Point struct{ X, Y float64 }

// Line is a named series.
type Line struct {
	Name   string
	Points []Point
}

// Lines draws one line per series and saves it to file. logX and logY put that axis on a log
// scale (every value must then be positive).
func Lines(file, title, xLabel, yLabel string, logX, logY bool, lines []Line) error {
	if err := checkExt(file); err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.Left = true
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	drawn := 0
	for i, l := range lines {
		if len(l.Points) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(l.Points))
		for j, pt := range l.Points {
			if (logX && pt.X <= 0) || (logY && pt.Y <= 0) {
				return fmt.Errorf("chart: %q has %v on a log axis: %w", l.Name, pt, ErrNoData)
			}
			xys[j] = plotter.XY{X: pt.X, Y: pt.Y}
		}
		ln, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		ln.Color = plotutil.Color(i)
		ln.Width = vg.Points(1.5)
		pts.Color = plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		p.Add(ln, pts)
		p.Legend.Add(l.Name, ln, pts)
		drawn++
	}
	if drawn == 0 {
		return ErrNoData
	}
	p.Add(plotter.NewGrid())
	return save(p, file)
}

// Group is one set of bars that share a colour (for example one pipelining depth), with one
// value per category.
type Group struct {
	Name   string
	Values []float64
}

// Bars draws categories along x (one per server) with one bar per group in each, and saves it.
func Bars(file, title, yLabel string, categories []string, groups []Group) error {
	if err := checkExt(file); err != nil {
		return err
	}
	if len(categories) == 0 || len(groups) == 0 {
		return ErrNoData
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	w := vg.Points(float64(min(40, 240/len(groups))))
	for i, g := range groups {
		if len(g.Values) != len(categories) {
			return fmt.Errorf("chart: group %q has %d values for %d categories: %w", g.Name, len(g.Values), len(categories), ErrNoData)
		}
		b, err := plotter.NewBarChart(plotter.Values(g.Values), w)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Color = color.Black
		b.Offset = w * vg.Length(float64(i)-float64(len(groups)-1)/2)
		p.Add(b)
		p.Legend.Add(g.Name, b)
	}
	p.NominalX(categories...)
	p.Add(plotter.NewGrid())
	width := vg.Length(max(6, len(categories)*len(groups))) * vg.Inch * 0.9
	return p.Save(width, 4*vg.Inch, file)
}

func save(p *plot.Plot, file string) error {
	if err := p.Save(8*vg.Inch, 5*vg.Inch, file); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

func checkExt(file string) error {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".png", ".svg", ".pdf":
		return nil
	}
	return fmt.Errorf("%w: %q", ErrFormat, file)
}
