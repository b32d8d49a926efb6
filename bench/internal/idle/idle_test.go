package idle

import (
	"context"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/reactord/reactord/bench/internal/servers"
)

func TestMeasureInProcess(t *testing.T) {
	s, err := servers.Lookup("floor")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := s.Start(context.Background(), servers.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	res, err := Measure(context.Background(), "floor", inst.Addr(), os.Getpid(), 100, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 100 || res.RSSBefore <= 0 || res.RSSAfter <= 0 {
		t.Fatalf("%+v", res)
	}
}

func TestMeasureBadConfig(t *testing.T) {
	if _, err := Measure(context.Background(), "x", "", 1, 1, nil, nil); !errors.Is(err, ErrBadConfig) {
		t.Fatal(err)
	}
	if _, err := Measure(context.Background(), "x", "127.0.0.1:1", 1, 0, nil, nil); !errors.Is(err, ErrBadConfig) {
		t.Fatal(err)
	}
}

// TestMeasureStepsSources opens connections in two steps from several loopback source
// addresses (PerSource 40 for 100 connections: three of them) and checks the points and that
// the connections really came from distinct addresses.
func TestMeasureStepsSources(t *testing.T) {
	s, err := servers.Lookup("floor")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := s.Start(context.Background(), servers.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	before := nextSource.Load()
	res, err := MeasureSteps(context.Background(), Options{Label: "floor", Addr: inst.Addr(), PID: os.Getpid(),
		Steps: []int{50, 100}, PerSource: 40})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 3 || res.Points[0].Conns != 0 || res.Points[1].Conns != 50 || res.Points[2].Conns != 100 {
		t.Fatalf("points %+v", res.Points)
	}
	if res.Conns != 100 || math.IsNaN(res.RSSSlope) || res.RSSBefore != res.Points[0].RSS || res.RSSAfter != res.Points[2].RSS {
		t.Fatalf("%+v", res)
	}
	// 101 connections (the warm one too) at 40 per address: 3 addresses, fresh for this run.
	if got := nextSource.Load() - before; got != 3 {
		t.Fatalf("used %d source addresses, want 3", got)
	}
	if _, err := MeasureSteps(context.Background(), Options{Addr: inst.Addr(), PID: 1, Steps: []int{10, 10}}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("repeated step: %v", err)
	}
}

func TestSlope(t *testing.T) {
	// y = 1000 + 300·x exactly, and with noise around it.
	exact := []Point{{Conns: 100, RSS: 31000}, {Conns: 200, RSS: 61000}, {Conns: 400, RSS: 121000}}
	rss := func(p Point) float64 { return float64(p.RSS) }
	if got := slope(exact, Point{}, rss); math.Abs(got-300) > 1e-9 {
		t.Fatalf("slope %v, want 300", got)
	}
	noisy := []Point{{Conns: 100, RSS: 31500}, {Conns: 200, RSS: 60500}, {Conns: 300, RSS: 91500}, {Conns: 400, RSS: 120500}}
	if got := slope(noisy, Point{}, rss); math.Abs(got-298) > 1 {
		t.Fatalf("noisy slope %v, want about 298", got)
	}
	// One step: the growth from the baseline per connection.
	if got := slope(exact[:1], Point{Conns: 0, RSS: 1000}, rss); got != 300 {
		t.Fatalf("one step %v", got)
	}
	if got := sourceAddr(0).String(); got != "127.0.0.1" {
		t.Fatal(got)
	}
	if got := sourceAddr(254).String(); got != "127.0.1.1" {
		t.Fatal(got)
	}
}
