package bufpool

import "testing"

func TestGetPutClasses(t *testing.T) {
	tests := []struct {
		n       int
		wantCap int
	}{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {4096, 4096}, {4097, 8192},
		{1 << 22, 1 << 22}, {1<<22 + 1, 1<<22 + 1},
	}
	var p Pool
	for _, tc := range tests {
		b := p.Get(tc.n)
		if len(b) != 0 || cap(b) != tc.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want 0/%d", tc.n, len(b), cap(b), tc.wantCap)
		}
		p.Put(b)
	}
}

func TestReuseAndBound(t *testing.T) {
	var p Pool
	a := p.Get(1000)
	a = append(a, 'x')
	p.Put(a)
	b := p.Get(900)
	if &a[:1][0] != &b[:1][0] {
		t.Fatal("buffer was not reused")
	}
	// The 4 MiB class keeps a single buffer.
	big1, big2 := p.Get(1<<22), p.Get(1<<22)
	p.Put(big1)
	p.Put(big2)
	if got := len(p.free[classOf(1<<22)]); got != 1 {
		t.Fatalf("4 MiB class keeps %d buffers, want 1", got)
	}
	// Odd capacities are dropped.
	p.Put(make([]byte, 0, 1000))
	if got := len(p.free[classOf(1000)]); got != 0 {
		t.Fatalf("odd buffer filed: %d", got)
	}
}

func TestGrowKeepsContents(t *testing.T) {
	var p Pool
	b := append(p.Get(10), "hello"...)
	b = p.Grow(b, 5000)
	if string(b) != "hello" || cap(b)-len(b) < 5000 {
		t.Fatalf("Grow: %q cap %d", b, cap(b))
	}
}

func TestNoAllocSteadyState(t *testing.T) {
	var p Pool
	p.Put(p.Get(4096))
	allocs := testing.AllocsPerRun(100, func() {
		b := p.Get(4096)
		p.Put(b)
	})
	if allocs != 0 {
		t.Fatalf("Get/Put allocates %.1f times", allocs)
	}
}

// TestGrowIsGeometric appends 24 MiB in 4 KiB pieces, as a connection's pending output grows
// behind a client that does not read, and counts the reallocations and the bytes they copy.
// Growth by the exact size asked for (one reallocation per append above the largest class)
// would copy about 70 GiB here.
func TestGrowIsGeometric(t *testing.T) {
	const total, piece = 24 << 20, 4 << 10
	var p Pool
	var b []byte
	chunk := make([]byte, piece)
	reallocs, copied := 0, 0
	for len(b) < total {
		before := cap(b)
		if cap(b)-len(b) < piece {
			copied += len(b)
		}
		b = append(p.Grow(b, piece), chunk...)
		if cap(b) != before {
			reallocs++
		}
	}
	// Classes 512 B .. 4 MiB (14), then x1.5 from 4 MiB to 24 MiB (5).
	if reallocs > 20 {
		t.Errorf("%d reallocations for %d MiB of appends, want at most 20", reallocs, total>>20)
	}
	// x1.5 growth copies about 2x what it ends with above the largest class.
	if copied > 3*total {
		t.Errorf("%d MiB copied by growth for %d MiB of appends, want at most %d", copied>>20, total>>20, 3*total>>20)
	}
	t.Logf("%d reallocations, %d MiB copied", reallocs, copied>>20)
}

func TestSize(t *testing.T) {
	tests := []struct{ old, need, want int }{
		{0, 100, 100},
		{1024, 2000, 2000},
		{MaxClass, MaxClass, MaxClass},
		{MaxClass, MaxClass + 1, MaxClass + MaxClass/2},
		{MaxClass, 3 * MaxClass, 3 * MaxClass},
		{8 << 20, 8<<20 + 1, 12 << 20},
	}
	for _, tc := range tests {
		if got := Size(tc.old, tc.need); got != tc.want {
			t.Errorf("Size(%d, %d) = %d, want %d", tc.old, tc.need, got, tc.want)
		}
	}
}
