// Package timerheap is the min-heap of deadlines behind the reactor's timers.
//
// The heap holds its entries by value — a deadline and a small owner reference — rather than
// pointers to items living elsewhere: a queued deadline costs its owner no separate allocation,
// and sifting compares deadlines that sit next to each other in one slice instead of chasing a
// pointer per comparison. Each owner is told its entry's position whenever it moves (through
// Indexed), so Remove and Fix run in O(log n) without a search: a connection's deadline can be
// cancelled or moved cheaply even when a hundred thousand of them are queued. The heap is not
// safe for concurrent use; the reactor touches it only from its loop goroutine.
package timerheap

// Indexed is the owner reference an entry carries. The heap calls SetHeapIndex with the
// entry's position plus one whenever the entry is queued or moves, and with 0 when it leaves
// the heap; the owner stores it and hands it back to Fix, Remove and When.
type Indexed interface {
	SetHeapIndex(i int)
}

// Entry is one queued deadline. When is in the caller's clock units (the reactor uses
// monotonic nanoseconds).
type Entry[T Indexed] struct {
	When  int64
	Value T
}

// Heap is a binary min-heap of entries ordered by When. The zero Heap is empty and ready to
// use.
type Heap[T Indexed] struct {
	es []Entry[T]
}

// Len returns the number of queued entries.
func (h *Heap[T]) Len() int { return len(h.es) }

// Min returns the entry with the earliest deadline without removing it; ok is false when the
// heap is empty.
func (h *Heap[T]) Min() (e Entry[T], ok bool) {
	if len(h.es) == 0 {
		return e, false
	}
	return h.es[0], true
}

// Push queues v at when and tells v its position.
func (h *Heap[T]) Push(when int64, v T) {
	h.es = append(h.es, Entry[T]{When: when, Value: v})
	i := len(h.es) - 1
	v.SetHeapIndex(i + 1)
	h.up(i)
}

// PopMin removes and returns the earliest entry; ok is false when the heap is empty.
func (h *Heap[T]) PopMin() (e Entry[T], ok bool) {
	if len(h.es) == 0 {
		return e, false
	}
	e = h.es[0]
	h.removeAt(0)
	return e, true
}

// valid reports whether idx (a position plus one, as given to SetHeapIndex) names an entry.
func (h *Heap[T]) valid(idx int) bool { return idx > 0 && idx <= len(h.es) }

// When returns the deadline of the entry at idx, or 0 and false if idx names none.
func (h *Heap[T]) When(idx int) (int64, bool) {
	if !h.valid(idx) {
		return 0, false
	}
	return h.es[idx-1].When, true
}

// Remove takes the entry at idx out of the heap. It reports false if idx names no entry.
func (h *Heap[T]) Remove(idx int) bool {
	if !h.valid(idx) {
		return false
	}
	h.removeAt(idx - 1)
	return true
}

// Fix moves the entry at idx to deadline when. It reports false if idx names no entry.
func (h *Heap[T]) Fix(idx int, when int64) bool {
	if !h.valid(idx) {
		return false
	}
	i := idx - 1
	h.es[i].When = when
	if !h.down(i) {
		h.up(i)
	}
	return true
}

func (h *Heap[T]) removeAt(i int) {
	last := len(h.es) - 1
	gone := h.es[i].Value
	if i != last {
		h.es[i] = h.es[last]
		h.es[i].Value.SetHeapIndex(i + 1)
	}
	var zero Entry[T]
	h.es[last] = zero // let the GC have the owner
	h.es = h.es[:last]
	gone.SetHeapIndex(0)
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	// Give memory back after a burst of timers (e.g. a flood of connections that all closed):
	// a quarter-full slice above a small floor is shrunk by half.
	if c := cap(h.es); c > 1024 && len(h.es) < c/4 {
		shrunk := make([]Entry[T], len(h.es), c/2)
		copy(shrunk, h.es)
		h.es = shrunk
	}
}

// up sifts entry i towards the root: the entry is held aside and parents move down into the
// hole, so each level costs one copy and one index update.
func (h *Heap[T]) up(i int) {
	e := h.es[i]
	start := i
	for i > 0 {
		p := (i - 1) / 2
		if h.es[p].When <= e.When {
			break
		}
		h.es[i] = h.es[p]
		h.es[i].Value.SetHeapIndex(i + 1)
		i = p
	}
	if i != start {
		h.es[i] = e
		e.Value.SetHeapIndex(i + 1)
	}
}

// down sifts entry i towards the leaves and reports whether it moved.
func (h *Heap[T]) down(i int) bool {
	e := h.es[i]
	start := i
	n := len(h.es)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.es[r].When < h.es[l].When {
			m = r
		}
		if e.When <= h.es[m].When {
			break
		}
		h.es[i] = h.es[m]
		h.es[i].Value.SetHeapIndex(i + 1)
		i = m
	}
	if i != start {
		h.es[i] = e
		e.Value.SetHeapIndex(i + 1)
		return true
	}
	return false
}
