package idle

import (
	"context"
	"errors"
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
