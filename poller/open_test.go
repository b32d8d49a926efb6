package poller

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

func TestOpen(t *testing.T) {
	bs := Backends()
	if len(bs) == 0 {
		t.Fatal("no backend compiled for this OS")
	}
	best, other := bs[0].Name, bs[len(bs)-1].Name
	tests := []struct {
		name, arg, env string
		want           string // backend name, or "" for ErrUnknownBackend
	}{
		{"auto picks the best", "auto", "", best},
		{"empty is auto", "", "", best},
		{"env overrides auto", "auto", other, other},
		{"env overrides empty", "", other, other},
		{"env auto is auto", "auto", "auto", best},
		{"explicit name ignores env", best, other, best},
		{"explicit name ignores a bad env", other, "nope", other},
		{"unknown name", "nope", "", ""},
		{"unknown env", "auto", "nope", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvVar, tc.env)
			p, err := Open(tc.arg)
			if tc.want == "" {
				if !errors.Is(err, ErrUnknownBackend) || p != nil {
					t.Fatalf("Open(%q) with %s=%q = %v, %v; want ErrUnknownBackend", tc.arg, EnvVar, tc.env, p, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q) with %s=%q: %v", tc.arg, EnvVar, tc.env, err)
			}
			defer p.Close()
			if p.Name() != tc.want {
				t.Fatalf("Open(%q) with %s=%q opened %q, want %q", tc.arg, EnvVar, tc.env, p.Name(), tc.want)
			}
		})
	}
}

func TestPollEnvSelectsPoll(t *testing.T) {
	// The issue's own example: REACTOR_POLLER=poll makes the default Open use poll.
	t.Setenv(EnvVar, "poll")
	p, err := Open("auto")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Name() != "poll" {
		t.Fatalf("got %q", p.Name())
	}
}

func TestBackends(t *testing.T) {
	bs := Backends()
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
		if lb, err := Lookup(b.Name); err != nil || lb.Name != b.Name {
			t.Errorf("Lookup(%q) = %v, %v", b.Name, lb.Name, err)
		}
	}
	if !slices.Contains(names, "poll") {
		t.Errorf("backends %v lack poll", names)
	}
	// The first backend is O(1) wherever one is compiled.
	if o1 := slices.IndexFunc(bs, func(b Backend) bool { return b.Has(FeatureO1) }); o1 > 0 {
		t.Errorf("backends %v: an O(1) backend is not first", names)
	}
	bs[0].Name = "changed" // a copy: the registry is untouched
	if Backends()[0].Name == "changed" {
		t.Error("Backends returned the registry itself")
	}
	if _, err := (Backend{Name: "x"}).Open(); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("zero Backend.Open: %v", err)
	}
}

func TestEventsString(t *testing.T) {
	tests := []struct {
		e    Events
		want string
	}{
		{0, "0"},
		{Readable, "Readable"},
		{Readable | Hangup, "Readable|Hangup"},
		{Writable | Error | EdgeTriggered, "Writable|Error|EdgeTriggered"},
		{Readable | 1<<20, "Readable|0x100000"},
	}
	for _, tc := range tests {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%d: %q, want %q", uint32(tc.e), got, tc.want)
		}
	}
}

func TestMsec(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{-1, -1},
		{-time.Hour, -1},
		{0, 0},
		{1, 1},
		{500 * time.Microsecond, 1},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 2},
		{time.Second, 1000},
		{1 << 62, 1<<31 - 1},
	}
	for _, tc := range tests {
		if got := msec(tc.d); got != tc.want {
			t.Errorf("msec(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestWaitAllocs checks the steady state allocates nothing, for the backends that promise it
// (kqueue's merge table may grow on first sight of an fd; that is not steady state either).
func TestWaitAllocs(t *testing.T) {
	for _, c := range configs() {
		t.Run(c.name, func(t *testing.T) {
			p := c.open(t)
			a, b := socketpair(t)
			if err := p.Add(a, Readable); err != nil {
				t.Fatal(err)
			}
			write(t, b, "x") // level-triggered and never read: every Wait reports it
			out := make([]Event, 16)
			// Both Waits below return at once (a ready fd, a pending wake-up); the timeout
			// only bounds a broken backend.
			bound := testsupport.Scale(time.Second)
			wait := func() {
				if n, err := p.Wait(out, bound); n != 1 || err != nil {
					t.Fatalf("Wait = %d, %v", n, err)
				}
			}
			if n := testing.AllocsPerRun(100, wait); n != 0 {
				t.Errorf("Wait with one ready fd: %v allocs per call", n)
			}
			if err := p.Remove(a); err != nil {
				t.Fatal(err)
			}
			wake := func() {
				if err := p.Wake(); err != nil {
					t.Fatal(err)
				}
				if n, err := p.Wait(out, bound); n != 0 || err != nil {
					t.Fatalf("Wait = %d, %v", n, err)
				}
			}
			if n := testing.AllocsPerRun(100, wake); n != 0 {
				t.Errorf("Wake then Wait: %v allocs per call", n)
			}
		})
	}
}
