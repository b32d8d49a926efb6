// Package bufpool holds byte buffers for one event loop: size-classed free lists that let a
// connection borrow input or output storage only while it has bytes to keep, and give it back
// once they are drained, so that an idle connection owns no buffer at all.
//
// A Pool is used by a single goroutine (the loop's) and takes no locks. Each class keeps at
// most a bounded number of bytes on its free list, so a burst of traffic cannot pin memory for
// ever; buffers beyond that, and buffers larger than the biggest class, are left to the GC.
//
// Growing is geometric at every size: up to the biggest class each step moves to the next
// power of two, and above it (where buffers come from the heap at the size asked for) Grow
// adds at least half the current capacity. A buffer built by many small appends is therefore
// copied O(1) times per byte, never once per append.
package bufpool

import "math/bits"

const (
	minShift = 9  // smallest class: 512 B
	maxShift = 22 // largest class: 4 MiB
	classes  = maxShift - minShift + 1
	// keepBytes bounds the free bytes kept per class (at least one buffer is kept): enough to
	// serve a busy iteration's worth of small responses without allocating, small enough
	// that a loop's pool never holds more than a few MiB in total.
	keepBytes = 256 << 10
)

// Pool is a set of free lists, one per power-of-two size class from 512 B to 4 MiB. The zero
// Pool is ready to use.
type Pool struct {
	free [classes][][]byte
}

// classOf returns the class whose buffers hold at least n bytes, or -1 if n is too large.
func classOf(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - minShift
	if c >= classes {
		return -1
	}
	return c
}

// Get returns a buffer of length 0 and capacity at least n. Its contents are garbage.
func (p *Pool) Get(n int) []byte {
	c := classOf(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[c] = l[:len(l)-1]
		return b[:0]
	}
	return make([]byte, 0, 1<<(c+minShift))
}

// Put gives b back for reuse. The caller must not touch b afterwards. Buffers whose capacity is
// not exactly a class size (grown by append, or foreign) are dropped rather than misfiled.
func (p *Pool) Put(b []byte) {
	n := cap(b)
	if n < 1<<minShift || n&(n-1) != 0 {
		return
	}
	c := classOf(n)
	if c < 0 {
		return
	}
	max := keepBytes >> (c + minShift)
	if max < 1 {
		max = 1
	}
	if len(p.free[c]) >= max {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
}

// MaxClass is the capacity of the largest size class. Larger buffers are allocated at the size
// asked for and left to the GC when put back.
const MaxClass = 1 << maxShift

// Grow returns b with room for at least extra more bytes, keeping its contents. A replaced
// buffer goes back to the pool. The new capacity is Size(cap(b), len(b)+extra).
func (p *Pool) Grow(b []byte, extra int) []byte {
	if cap(b)-len(b) >= extra {
		return b
	}
	nb := p.Get(Size(cap(b), len(b)+extra))
	nb = append(nb, b...)
	p.Put(b)
	return nb
}

// Size returns the capacity to ask Get for when a buffer of capacity old must grow to hold
// need bytes. Up to MaxClass it is need (Get rounds it up to the next power of two); above,
// at least one and a half times old, so that growth stays geometric where Get no longer
// rounds.
func Size(old, need int) int {
	if need <= MaxClass {
		return need
	}
	return max(need, old+old/2)
}
