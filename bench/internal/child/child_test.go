package child

import (
	"errors"
	"testing"
)

func TestReadyRoundTrip(t *testing.T) {
	addr, pid, err := ParseReady(FormatReady("127.0.0.1:8080", 42))
	if err != nil || addr != "127.0.0.1:8080" || pid != 42 {
		t.Fatalf("%q %d %v", addr, pid, err)
	}
	for _, bad := range []string{"", "READY", "READY addr=x", "READY addr=x pid=0", "READY addr=x pid=q", "HELLO addr=x pid=1", "READY addr"} {
		if _, _, err := ParseReady(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestStatsRoundTrip(t *testing.T) {
	in := RuntimeStats{HeapInuse: 1, HeapAlloc: 2, StackInuse: 3, Goroutines: 4}
	got, err := ParseStats(FormatStats(in))
	if err != nil || got != in {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ParseStats("STATS heap_inuse=1"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("partial: %v", err)
	}
}

func TestMallocsRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		n  uint64
		ok bool
	}{{0, true}, {12345, true}, {0, false}} {
		n, ok, err := ParseMallocs(FormatMallocs(tt.n, tt.ok))
		if err != nil || n != tt.n || ok != tt.ok {
			t.Fatalf("%+v: %d %v %v", tt, n, ok, err)
		}
	}
	for _, bad := range []string{"MALLOCS", "MALLOCS x", "STATS 1", "MALLOCS 1 2"} {
		if _, _, err := ParseMallocs(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
