package pollbench

import (
	"errors"
	"testing"

	"github.com/reactord/reactord/poller"
)

func TestRunEveryBackend(t *testing.T) {
	for _, b := range poller.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			if err := b.Available(); errors.Is(err, poller.ErrUnsupported) {
				t.Skipf("%s unavailable here: %v", b.Name, err)
			}
			for _, c := range []Config{{Pairs: 50, Active: 1, Writes: 100, Runs: 3}, {Pairs: 64, Active: 8, Writes: 200, Runs: 3}} {
				c.Backend = b.Name
				r, err := Run(c)
				if err != nil {
					t.Fatal(err)
				}
				// Every primed byte and every chained write is read exactly once.
				if r.Events < c.Active+c.Writes || r.Dispatches < 1 || r.PerRun <= 0 || r.PerDispatch <= 0 {
					t.Fatalf("%+v: %+v", c, r)
				}
			}
		})
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Backend: "epoll", Pairs: 0, Active: 1},
		{Backend: "epoll", Pairs: 5, Active: 0},
		{Backend: "epoll", Pairs: 5, Active: 6},
		{Backend: "epoll", Pairs: 5, Active: 1, Writes: -1},
	} {
		if _, err := Run(c); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if _, err := Run(Config{Backend: "nope", Pairs: 1, Active: 1}); !errors.Is(err, poller.ErrUnknownBackend) {
		t.Errorf("unknown backend: %v", err)
	}
}
