package poller

import (
	"errors"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestContract runs every case against every backend configuration this OS has.
func TestContract(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, c config)
	}{
		{"Readable", testReadable},
		{"Writable", testWritable},
		{"ReadableAndWritable", testBoth},
		{"HangupOnClose", testHangupOnClose},
		{"HangupOnShutdown", testHangupOnShutdown},
		{"ModifySwitchesInterest", testModify},
		{"AddWithNoInterest", testAddQuiet},
		{"RemoveStopsEvents", testRemove},
		{"ReusedNumber", testReusedNumber},
		{"HalfCloseNeedsReadInterest", testHalfCloseNeedsRead},
		{"LevelOrEdge", testLevelOrEdge},
		{"WakeUnblocksWait", testWakeUnblocks},
		{"WakeCoalesces", testWakeCoalesces},
		{"Timeout", testTimeout},
		{"ManyFDs", testManyFDs},
		{"HighFD", testHighFD},
		{"SmallOut", testSmallOut},
		{"ClosedWhileRegistered", testClosedWhileRegistered},
		{"Errors", testErrors},
		{"AfterClose", testAfterClose},
		{"WakeCloseRace", testWakeCloseRace},
		{"CloseUnblocksWait", testCloseUnblocksWait},
	}
	for _, c := range configs() {
		t.Run(c.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
			}
		})
	}
}

func testReadable(t *testing.T, c config) {
	p := c.open(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	quiet(t, p, a)
	write(t, b, "x")
	if ev := waitFor(t, p, a, Readable); ev&(Writable|Hangup|Error) != 0 {
		t.Fatalf("want only Readable, got %v", ev)
	}
	if s, _ := drain(t, a); s != "x" {
		t.Fatalf("read %q", s)
	}
}

func testWritable(t *testing.T, c config) {
	p := c.open(t)
	a, _ := socketpair(t)
	if err := p.Add(a, Writable|c.et); err != nil {
		t.Fatal(err)
	}
	if ev := waitFor(t, p, a, Writable); ev&(Readable|Hangup|Error) != 0 {
		t.Fatalf("want only Writable, got %v", ev)
	}
}

func testBoth(t *testing.T, c config) {
	p := c.open(t)
	a, b := socketpair(t)
	write(t, b, "x")
	if err := p.Add(a, Readable|Writable|c.et); err != nil {
		t.Fatal(err)
	}
	// One Event per fd: a backend with separate read and write filters (kqueue) must merge.
	got := collect(t, p, testsupport.Scale(5*time.Second))
	if got[a] != Readable|Writable {
		t.Fatalf("want fd %d Readable|Writable in one Wait, got %v", a, got)
	}
}

func testHangupOnClose(t *testing.T, c config) {
	p := c.open(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	write(t, b, "bye")
	closeFD(t, b)
	want := Readable | Hangup
	if c.b.Name == "select" {
		// select has no hang-up bit: the closed peer shows as readable and read says EOF.
		want = Readable
	}
	waitFor(t, p, a, want)
	if s, eof := drain(t, a); s != "bye" || !eof {
		t.Fatalf("read %q eof=%v, want \"bye\" then EOF", s, eof)
	}
}

func testHangupOnShutdown(t *testing.T, c config) {
	if !c.b.Has(FeatureRDHUP) {
		t.Skipf("%s does not report a half-close on its own (no FeatureRDHUP)", c.b.Name)
	}
	p := c.open(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	if err := unix.Shutdown(b, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, a, Hangup)
	// Half-closed only: a can still write to b.
	write(t, a, "still open")
}

func testModify(t *testing.T, c config) {
	p := c.open(t)
	a, b := socketpair(t)
	write(t, b, "x")
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, a, Readable)
	if err := p.Modify(a, Writable|c.et); err != nil {
		t.Fatal(err)
	}
	if ev := waitFor(t, p, a, Writable); ev&Readable != 0 {
		t.Fatalf("after Modify(Writable): got %v, want no Readable", ev)
	}
	if err := p.Modify(a, c.et); err != nil {
		t.Fatal(err)
	}
	quiet(t, p, a)
	if err := p.Modify(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	// The byte is still unread, so even an edge-triggered fd is reported after re-arming.
	waitFor(t, p, a, Readable)
}

func testAddQuiet(t *testing.T, c config) {
	// Registered but silent: data waiting on fd is not reported until interest is turned on,
	// and then it is, even edge-triggered (the data arrived before the interest did).
	p := c.open(t)
	a, b := socketpair(t)
	write(t, b, "x")
	if err := p.Add(a, c.et); err != nil {
		t.Fatal(err)
	}
	quiet(t, p, a)
	if err := p.Add(a, Readable|c.et); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("Add of an fd registered with no interest: %v, want ErrAlreadyRegistered", err)
	}
	if err := p.Modify(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, a, Readable)
	if err := p.Modify(a, c.et); err != nil {
		t.Fatal(err)
	}
	quiet(t, p, a)
	if err := p.Remove(a); err != nil {
		t.Fatal(err)
	}
}

func testRemove(t *testing.T, c config) {
	p := c.open(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable|Writable|c.et); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(a); err != nil {
		t.Fatal(err)
	}
	write(t, b, "x")
	quiet(t, p, a)
	// The number can be added again.
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, a, Readable)
}

func testReusedNumber(t *testing.T, c config) {
	// An fd removed while ready, closed, and its number handed out again: nothing the old
	// file had pending may be reported for the new one.
	p := c.open(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable|Writable|c.et); err != nil {
		t.Fatal(err)
	}
	write(t, b, "old")
	waitFor(t, p, a, Readable)
	write(t, b, "more") // a wake-up in flight for the old file as it goes
	if err := p.Remove(a); err != nil {
		t.Fatal(err)
	}
	closeFD(t, a)
	x, y := socketpair(t)
	if x != a {
		t.Logf("fd %d was not reused (got %d); checking the new fd anyway", a, x)
	}
	if err := p.Add(x, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	quiet(t, p, x)
	write(t, y, "new")
	if ev := waitFor(t, p, x, Readable); ev&Writable != 0 {
		t.Fatalf("new fd reported %v: Writable was the old file's interest", ev)
	}
}

func testHalfCloseNeedsRead(t *testing.T, c config) {
	// A peer's half-close is news for a reader only. With Writable interest and a full send
	// buffer (output backed up, input paused: the reactor's backpressure state), it must not
	// be reported, or a level-triggered loop would spin on it.
	p := c.open(t)
	a, b := socketpair(t)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := unix.Write(a, chunk); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Add(a, Writable|c.et); err != nil {
		t.Fatal(err)
	}
	if err := unix.Shutdown(b, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	quiet(t, p, a)
	if err := p.Modify(a, Readable|Writable|c.et); err != nil {
		t.Fatal(err)
	}
	want := Readable | Hangup
	if !c.b.Has(FeatureRDHUP) {
		want = Readable // the EOF is read, not reported
	}
	if ev := waitFor(t, p, a, want); ev&Writable != 0 {
		t.Fatalf("got %v with a full send buffer", ev)
	}
}

func testLevelOrEdge(t *testing.T, c config) {
	p := c.open(t)
	a, b := socketpair(t)
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	write(t, b, "x")
	waitFor(t, p, a, Readable)
	if c.et == 0 {
		// Level-triggered: the unread byte is reported again, every time.
		for i := 0; i < 3; i++ {
			waitFor(t, p, a, Readable)
		}
		return
	}
	// Edge-triggered: no new edge, no event, though the byte is still there...
	quiet(t, p, a)
	// ...until new data arrives.
	write(t, b, "y")
	waitFor(t, p, a, Readable)
	quiet(t, p, a)
	if s, _ := drain(t, a); s != "xy" {
		t.Fatalf("read %q", s)
	}
}

func testWakeUnblocks(t *testing.T, c config) {
	p := c.open(t)
	a, _ := socketpair(t)
	if err := p.Add(a, Readable|c.et); err != nil { // something idle in the set
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := p.Wait(make([]Event, 8), -1)
		done <- result{n, err}
	}()
	// Not a synchronisation sleep: a window in which Wait must NOT return on its own.
	select {
	case r := <-done:
		t.Fatalf("Wait(-1) returned before Wake: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.n != 0 || r.err != nil {
			t.Fatalf("woken Wait returned %d, %v; want 0, nil", r.n, r.err)
		}
	case <-time.After(testsupport.Scale(5 * time.Second)):
		t.Fatal("Wake did not unblock Wait(-1) within 5s")
	}
}

// countingWaker counts the kernel writes Wake makes.
type countingWaker struct {
	kernelWaker
	signals atomic.Int64
}

func (w *countingWaker) signal() error {
	w.signals.Add(1)
	return w.kernelWaker.signal()
}

// lifecycleOf reaches the shared state every backend embeds.
func lifecycleOf(t testing.TB, p Poller) *lifecycle {
	l, ok := p.(interface{ life() *lifecycle })
	if !ok {
		t.Fatalf("%T does not embed lifecycle", p)
	}
	return l.life()
}

func testWakeCoalesces(t *testing.T, c config) {
	p := c.open(t)
	l := lifecycleOf(t, p)
	cw := &countingWaker{kernelWaker: l.k}
	l.k = cw
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				if err := p.Wake(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := cw.signals.Load(); n != 1 {
		t.Fatalf("1000 Wakes made %d kernel writes, want 1", n)
	}
	out := make([]Event, 8)
	done := make(chan error, 1)
	go func() {
		n, err := p.Wait(out, -1)
		if err == nil && n != 0 {
			err = errors.New("woken Wait reported events")
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testsupport.Scale(5 * time.Second)):
		t.Fatal("1000 Wakes did not release Wait(-1) within 5s")
	}
	// The wake-up was consumed: a timed Wait now runs its full course.
	const d = 30 * time.Millisecond
	start := time.Now()
	if n, err := p.Wait(out, d); n != 0 || err != nil {
		t.Fatalf("Wait after drain: %d, %v", n, err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("Wait(%v) after drain returned after %v: a wake-up was left pending", d, el)
	}
	// And the next Wake writes again.
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	if n := cw.signals.Load(); n != 2 {
		t.Fatalf("Wake after a drained Wait made %d kernel writes in total, want 2", n)
	}
}

func testTimeout(t *testing.T, c config) {
	p := c.open(t)
	a, _ := socketpair(t)
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	out := make([]Event, 8)
	// Lower bounds are strict; the upper bound only catches a Wait that ignores its timeout
	// (this is not a speed test: the box may be busy).
	for _, d := range []time.Duration{0, 1500 * time.Microsecond, 30 * time.Millisecond} {
		start := time.Now()
		n, err := p.Wait(out, d)
		el := time.Since(start)
		if n != 0 || err != nil {
			t.Fatalf("Wait(%v) = %d, %v", d, n, err)
		}
		if el < d || el > d+testsupport.Scale(2*time.Second) {
			t.Fatalf("Wait(%v) took %v", d, el)
		}
	}
}

func testManyFDs(t *testing.T, c config) {
	const pairs = 2500
	if nofile < 2*pairs+100 {
		t.Skipf("RLIMIT_NOFILE is %d, need %d for %d socketpairs", nofile, 2*pairs+100, pairs)
	}
	p := c.open(t)
	ends := make([][2]int, pairs)
	for i := range ends {
		ends[i][0], ends[i][1] = socketpair(t)
		for _, fd := range ends[i] {
			if err := p.Add(fd, Readable|c.et); err != nil {
				t.Fatalf("add #%d (fd %d): %v", i, fd, err)
			}
		}
	}
	// Wake a few, spread from the first to the last registered fd.
	want := map[int]bool{}
	for _, i := range []int{0, 1, 700, 1999, pairs - 1} {
		write(t, ends[i][1], "x")
		want[ends[i][0]] = true
	}
	got := map[int]bool{}
	dl := testsupport.Deadline(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(dl) {
		for fd, ev := range collect(t, p, time.Until(dl)) {
			if !want[fd] || ev != Readable {
				t.Fatalf("unexpected event fd %d %v", fd, ev)
			}
			got[fd] = true
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if c.et == 0 {
		// Level-triggered: all five again, and nothing else, in one Wait.
		if all := collect(t, p, testsupport.Scale(time.Second)); len(all) != len(want) {
			t.Fatalf("second Wait: got %v, want %v", all, want)
		}
	}
}

func testHighFD(t *testing.T, c config) {
	for _, min := range []int{1500, 4000} {
		if uint64(min)+10 > nofile {
			t.Logf("RLIMIT_NOFILE %d: skipping fd %d", nofile, min)
			continue
		}
		p := c.open(t)
		a, b := socketpair(t)
		// F_DUPFD_CLOEXEC takes the lowest free number >= min, so it never clobbers an
		// open fd (dup2 would).
		high, err := unix.FcntlInt(uintptr(a), unix.F_DUPFD_CLOEXEC, min)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(high) })
		if err := p.Add(high, Readable|c.et); err != nil {
			t.Fatalf("add fd %d: %v", high, err)
		}
		write(t, b, "x")
		waitFor(t, p, high, Readable)
		if err := p.Remove(high); err != nil {
			t.Fatal(err)
		}
	}
}

func testSmallOut(t *testing.T, c config) {
	p := c.open(t)
	want := map[int]bool{}
	for i := 0; i < 3; i++ {
		a, b := socketpair(t)
		if err := p.Add(a, Readable|c.et); err != nil {
			t.Fatal(err)
		}
		write(t, b, "x")
		want[a] = true
	}
	// Three ready fds, room for one at a time: each Wait fills the slice, and (unread, even
	// edge-triggered) the others come in later Waits rather than being lost.
	seen := map[int]bool{}
	out := make([]Event, 1)
	for i := 0; i < 3; i++ {
		n, err := p.Wait(out, testsupport.Scale(5*time.Second))
		if err != nil || n != 1 {
			t.Fatalf("Wait #%d = %d, %v; want 1", i, n, err)
		}
		if !want[out[0].FD] || seen[out[0].FD] {
			t.Fatalf("Wait #%d reported fd %d; want one of %v not yet seen %v", i, out[0].FD, want, seen)
		}
		seen[out[0].FD] = true
	}
}

func testClosedWhileRegistered(t *testing.T, c config) {
	// Misuse the contract warns about: closing an fd without Remove. Whatever the backend
	// makes of it, Wait must not fail or wedge, and Remove must clear it.
	p := c.open(t)
	a, _ := socketpair(t)
	x, y := socketpair(t)
	if err := p.Add(a, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(x, Readable|c.et); err != nil {
		t.Fatal(err)
	}
	closeFD(t, a)
	out := make([]Event, 8)
	if _, err := p.Wait(out, 10*time.Millisecond); err != nil {
		t.Fatalf("Wait with a closed fd registered: %v", err)
	}
	if err := p.Remove(a); err != nil && !errors.Is(err, unix.EBADF) {
		t.Fatalf("Remove of the closed fd: %v", err)
	}
	write(t, y, "x") // the other fd still works
	waitFor(t, p, x, Readable)
}

func testErrors(t *testing.T, c config) {
	p := c.open(t)
	a, _ := socketpair(t)
	x, y := socketpair(t)
	closeFD(t, x)
	closeFD(t, y) // x is now a closed number
	if err := p.Add(a, Readable); err != nil {
		t.Fatal(err)
	}
	notET := Events(0)
	if !c.b.Has(FeatureEdgeTriggered) {
		notET = EdgeTriggered
	}
	unknown := a + 1000
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"add closed fd", func() error { return p.Add(x, Readable) }, unix.EBADF},
		{"add twice", func() error { return p.Add(a, Readable) }, ErrAlreadyRegistered},
		{"add negative fd", func() error { return p.Add(-1, Readable) }, ErrInvalidArgument},
		{"add Hangup interest", func() error { return p.Add(x, Hangup) }, ErrInvalidArgument},
		{"add unknown bits", func() error { return p.Add(x, 1<<20) }, ErrInvalidArgument},
		{"modify unknown fd", func() error { return p.Modify(unknown, Readable) }, ErrNotRegistered},
		{"modify negative fd", func() error { return p.Modify(-3, Readable) }, ErrInvalidArgument},
		{"modify bad mask", func() error { return p.Modify(a, Error) }, ErrInvalidArgument},
		{"remove unknown fd", func() error { return p.Remove(unknown) }, ErrNotRegistered},
		{"remove negative fd", func() error { return p.Remove(-1) }, ErrInvalidArgument},
		{"wait empty slice", func() error { _, err := p.Wait(nil, 0); return err }, ErrInvalidArgument},
	}
	if notET != 0 {
		tests = append(tests,
			struct {
				name string
				call func() error
				want error
			}{"add edge-triggered", func() error { return p.Add(x, Readable|EdgeTriggered) }, ErrUnsupported},
			struct {
				name string
				call func() error
				want error
			}{"modify edge-triggered", func() error { return p.Modify(a, Readable|EdgeTriggered) }, ErrUnsupported})
	}
	if bits.UintSize == 64 {
		// The kernel would truncate this to a, which is registered: it must be refused
		// before it gets there.
		var shift uint = 32
		huge := a + 1<<shift
		tests = append(tests, []struct {
			name string
			call func() error
			want error
		}{
			{"add fd beyond 32 bits", func() error { return p.Add(huge, Readable) }, ErrInvalidArgument},
			{"modify fd beyond 32 bits", func() error { return p.Modify(huge, Readable) }, ErrInvalidArgument},
			{"remove fd beyond 32 bits", func() error { return p.Remove(huge) }, ErrInvalidArgument},
		}...)
	}
	for _, tc := range tests {
		err := tc.call()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		// Errors about a registration say which backend and which fd, for the logs.
		if tc.want != ErrInvalidArgument && tc.want != ErrUnsupported && err != nil &&
			!strings.Contains(err.Error(), "poller: "+c.b.Name+": ") {
			t.Errorf("%s: error %q does not name the backend", tc.name, err)
		}
	}
	// Failed calls changed nothing: a is still registered with its old interest.
	if err := p.Remove(a); err != nil {
		t.Fatalf("remove after failed calls: %v", err)
	}
}

func testAfterClose(t *testing.T, c config) {
	p := c.open(t)
	a, _ := socketpair(t)
	if err := p.Add(a, Readable); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Add":    func() error { return p.Add(a, Readable) },
		"Modify": func() error { return p.Modify(a, Writable) },
		"Remove": func() error { return p.Remove(a) },
		"Wait":   func() error { _, err := p.Wait(make([]Event, 1), 0); return err },
		"Wake":   p.Wake,
		"Close":  p.Close,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if p.Name() != c.b.Name {
		t.Errorf("Name after Close = %q", p.Name())
	}
}

func testWakeCloseRace(t *testing.T, c config) {
	for i := 0; i < 20; i++ {
		p, err := c.b.Open()
		skipUnsupported(t, err)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if err := p.Wake(); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Wake: %v", err)
						}
						return
					}
				}
			}()
		}
		closeErrs := make(chan error, 2)
		for g := 0; g < 2; g++ {
			go func() { closeErrs <- p.Close() }()
		}
		e1, e2 := <-closeErrs, <-closeErrs
		if (e1 == nil) == (e2 == nil) || !errors.Is(errors.Join(e1, e2), ErrClosed) {
			t.Fatalf("two concurrent Closes returned %v and %v; want one nil, one ErrClosed", e1, e2)
		}
		wg.Wait()
	}
}

func testCloseUnblocksWait(t *testing.T, c config) {
	p, err := c.b.Open()
	skipUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Wait(make([]Event, 4), -1)
		done <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait during Close: %v", err)
		}
	case <-time.After(testsupport.Scale(5 * time.Second)):
		t.Fatal("Close did not release a blocked Wait within 5s")
	}
}
