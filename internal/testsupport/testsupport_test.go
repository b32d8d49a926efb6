package testsupport

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeTB struct{ msg string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	tests := []struct {
		name    string
		cond    func() func() bool
		timeout time.Duration
		wantMsg string // "" when the wait succeeds
	}{
		{"true at once", func() func() bool { return func() bool { return true } }, time.Second, ""},
		{"true after a few polls", func() func() bool {
			var n atomic.Int32
			return func() bool { return n.Add(1) > 5 }
		}, time.Second, ""},
		{"never", func() func() bool { return func() bool { return false } }, 20 * time.Millisecond,
			"waiting for the thing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTB{}
			Eventually(f, tc.timeout, "the thing", tc.cond())
			if tc.wantMsg == "" && f.msg != "" {
				t.Fatalf("unexpected failure: %s", f.msg)
			}
			if tc.wantMsg != "" && !strings.Contains(f.msg, tc.wantMsg) {
				t.Fatalf("failure message %q does not name what was awaited (%q)", f.msg, tc.wantMsg)
			}
		})
	}
}

func TestScaleDefaultsToOne(t *testing.T) {
	if s := TimeScale(); s <= 0 {
		t.Fatalf("TimeScale() = %v, want positive", s)
	}
	if got, want := Scale(time.Second), time.Duration(float64(time.Second)*TimeScale()); got != want {
		t.Fatalf("Scale(1s) = %v, want %v", got, want)
	}
}

func TestDeadline(t *testing.T) {
	before := time.Now()
	got := Deadline(time.Minute)
	after := time.Now()
	if lo, hi := before.Add(Scale(time.Minute)), after.Add(Scale(time.Minute)); got.Before(lo) || got.After(hi) {
		t.Fatalf("Deadline(1m) = %v, want between %v and %v", got, lo, hi)
	}
}

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	f := &fakeTB{}
	if got := Recv(f, ch, time.Second, "the value"); got != 7 || f.msg != "" {
		t.Fatalf("Recv = %d (failure %q), want 7 and no failure", got, f.msg)
	}
	if Recv(f, ch, 20*time.Millisecond, "a value never sent"); !strings.Contains(f.msg, "waiting for a value never sent") {
		t.Fatalf("failure message %q does not name what was awaited", f.msg)
	}
}
