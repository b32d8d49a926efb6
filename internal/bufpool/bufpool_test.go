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
