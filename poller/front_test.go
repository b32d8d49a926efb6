package poller

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeOps records the kernel calls the front makes and answers them from a script, so the
// front's own rules (checks, table, error mapping, retries) are tested without a kernel.
type fakeOps struct {
	calls []string
	fail  map[string]error // "add"/"modify"/"remove" -> error to return once
	waits []fakeWait       // consumed one per wait call
	own   int
}

type fakeWait struct {
	n    int
	woke bool
	err  error
}

func (f *fakeOps) take(call string) error {
	err := f.fail[call]
	delete(f.fail, call)
	return err
}

func (f *fakeOps) add(fd int, in Events) error {
	f.calls = append(f.calls, fmt.Sprintf("add %d %v", fd, in))
	return f.take("add")
}

func (f *fakeOps) modify(fd int, old, in Events) error {
	f.calls = append(f.calls, fmt.Sprintf("modify %d %v->%v", fd, old, in))
	return f.take("modify")
}

func (f *fakeOps) remove(fd int, old Events) error {
	f.calls = append(f.calls, fmt.Sprintf("remove %d %v", fd, old))
	return f.take("remove")
}

func (f *fakeOps) wait(out []Event, d time.Duration) (int, bool, error) {
	f.calls = append(f.calls, "wait")
	if len(f.waits) == 0 {
		return 0, false, nil
	}
	w := f.waits[0]
	f.waits = f.waits[1:]
	for i := range w.n {
		out[i] = Event{FD: 100 + i, Events: Readable}
	}
	return w.n, w.woke, w.err
}

func (f *fakeOps) owns(fd int) bool { return fd == f.own }
func (f *fakeOps) close() error     { f.calls = append(f.calls, "close"); return nil }

// nopWaker is a kernelWaker that touches no kernel.
type nopWaker struct{ drains int }

func (*nopWaker) signal() error { return nil }
func (w *nopWaker) drain()      { w.drains++ }
func (*nopWaker) close() error  { return nil }

func newFakeFront(t *testing.T, f Features, openCheck bool) (*front, *fakeOps, *nopWaker) {
	t.Helper()
	o := &fakeOps{fail: map[string]error{}, own: 3}
	w := &nopWaker{}
	p := newFront(Backend{Name: "fake", Features: f, openCheck: openCheck}, o, w)
	return p, o, w
}

// TestFrontCallsOps checks which kernel calls the front makes for each public call, and that
// it passes the interest the fd had before.
func TestFrontCallsOps(t *testing.T) {
	p, o, _ := newFakeFront(t, FeatureEdgeTriggered, false)
	steps := []struct {
		call func() error
		want error
	}{
		{func() error { return p.Add(7, Readable) }, nil},
		{func() error { return p.Add(7, Writable) }, ErrAlreadyRegistered},
		{func() error { return p.Add(3, Readable) }, ErrAlreadyRegistered}, // the backend's own fd
		{func() error { return p.Modify(7, Readable|Writable) }, nil},
		{func() error { return p.Modify(8, Readable) }, ErrNotRegistered},
		{func() error { return p.Modify(7, Hangup) }, ErrInvalidArgument},
		{func() error { return p.Remove(7) }, nil},
		{func() error { return p.Remove(7) }, ErrNotRegistered},
		{func() error { return p.Add(-1, Readable) }, ErrInvalidArgument},
	}
	for i, s := range steps {
		if err := s.call(); !errors.Is(err, s.want) {
			t.Fatalf("step %d: %v, want %v", i, err, s.want)
		}
	}
	want := []string{"add 7 Readable", "modify 7 Readable->Readable|Writable", "remove 7 Readable|Writable"}
	if !slices.Equal(o.calls, want) {
		t.Fatalf("kernel calls %q, want %q", o.calls, want)
	}
}

// TestFrontKernelErrors checks how the front maps what the kernel says.
func TestFrontKernelErrors(t *testing.T) {
	tests := []struct {
		name       string
		fail       string
		err        error
		call       func(p *front) error
		want       error
		registered bool // is fd 7 still registered afterwards?
	}{
		{"add EEXIST is already registered", "add", unix.EEXIST,
			func(p *front) error { return p.Add(9, Readable) }, ErrAlreadyRegistered, true},
		{"add EBADF is wrapped", "add", unix.EBADF,
			func(p *front) error { return p.Add(9, Readable) }, unix.EBADF, true},
		{"modify ENOENT forgets the fd", "modify", unix.ENOENT,
			func(p *front) error { return p.Modify(7, Writable) }, ErrNotRegistered, false},
		{"modify EBADF forgets the fd", "modify", unix.EBADF,
			func(p *front) error { return p.Modify(7, Writable) }, unix.EBADF, false},
		{"modify EINVAL keeps the fd", "modify", unix.EINVAL,
			func(p *front) error { return p.Modify(7, Writable) }, unix.EINVAL, true},
		{"remove ENOENT is success", "remove", unix.ENOENT,
			func(p *front) error { return p.Remove(7) }, nil, false},
		{"remove EIO is reported, fd forgotten", "remove", unix.EIO,
			func(p *front) error { return p.Remove(7) }, unix.EIO, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, o, _ := newFakeFront(t, 0, false)
			if err := p.Add(7, Readable); err != nil {
				t.Fatal(err)
			}
			o.fail[tc.fail] = tc.err
			err := tc.call(p)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "poller: fake: ") {
				t.Errorf("error %q does not name the backend", err)
			}
			if _, ok := p.fds.get(7); ok != tc.registered {
				t.Fatalf("fd 7 registered = %v, want %v", ok, tc.registered)
			}
		})
	}
}

// TestFrontOpenCheck checks that backends whose kernel accepts closed fds get EBADF from Add,
// and that the kernel is not asked.
func TestFrontOpenCheck(t *testing.T) {
	x, y := socketpair(t)
	closeFD(t, x)
	closeFD(t, y)
	p, o, _ := newFakeFront(t, 0, true)
	if err := p.Add(x, Readable); !errors.Is(err, unix.EBADF) {
		t.Fatalf("Add(closed fd) = %v, want EBADF", err)
	}
	if len(o.calls) != 0 {
		t.Fatalf("kernel calls %q for a closed fd", o.calls)
	}
}

// TestFrontWaitRetries checks the Wait loop: EINTR and EAGAIN retried, other errors wrapped,
// a wake-up drained and returned as 0 events, an empty result before the deadline waited out.
func TestFrontWaitRetries(t *testing.T) {
	out := make([]Event, 4)
	t.Run("EINTR and EAGAIN", func(t *testing.T) {
		p, o, _ := newFakeFront(t, 0, false)
		o.waits = []fakeWait{{err: unix.EINTR}, {err: unix.EAGAIN}, {n: 2}}
		if n, err := p.Wait(out, -1); n != 2 || err != nil {
			t.Fatalf("Wait = %d, %v", n, err)
		}
	})
	t.Run("other errors", func(t *testing.T) {
		p, o, _ := newFakeFront(t, 0, false)
		o.waits = []fakeWait{{err: unix.EFAULT}}
		if _, err := p.Wait(out, -1); !errors.Is(err, unix.EFAULT) || !strings.Contains(err.Error(), "fake") {
			t.Fatalf("Wait = %v", err)
		}
	})
	t.Run("wake", func(t *testing.T) {
		p, o, w := newFakeFront(t, 0, false)
		p.pending.Store(1)
		o.waits = []fakeWait{{woke: true}}
		if n, err := p.Wait(out, -1); n != 0 || err != nil {
			t.Fatalf("Wait = %d, %v", n, err)
		}
		if w.drains != 1 || p.pending.Load() != 0 {
			t.Fatalf("drains %d pending %d after a wake-up", w.drains, p.pending.Load())
		}
	})
	t.Run("spurious empty returns", func(t *testing.T) {
		// Three kernel returns with nothing, then events: a blocking Wait does not return 0.
		p, o, _ := newFakeFront(t, 0, false)
		o.waits = []fakeWait{{}, {}, {}, {n: 1}}
		if n, err := p.Wait(out, -1); n != 1 || err != nil {
			t.Fatalf("Wait = %d, %v", n, err)
		}
		if len(o.calls) != 4 {
			t.Fatalf("%d kernel waits, want 4", len(o.calls))
		}
	})
	t.Run("poll returns at once", func(t *testing.T) {
		p, o, _ := newFakeFront(t, 0, false)
		if n, err := p.Wait(out, 0); n != 0 || err != nil || len(o.calls) != 1 {
			t.Fatalf("Wait(0) = %d, %v after %d kernel waits", n, err, len(o.calls))
		}
	})
}
