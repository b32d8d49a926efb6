// Package timerheap is the min-heap of deadlines behind the reactor's timers.
//
// Each Item remembers its own position in the heap, so Remove and Fix run in O(log n) without a
// search: a connection's idle timer can be cancelled or moved cheaply even when thousands of
// them are queued. The heap is not safe for concurrent use; the reactor touches it only from
// its loop goroutine.
package timerheap

// Item is one deadline in a Heap. When is in the caller's clock units (the reactor uses
// monotonic nanoseconds); Value is carried for the caller and never inspected. Change When only
// while the item is outside a heap, or call Fix afterwards.
type Item[T any] struct {
	When  int64
	Value T
	// index is the item's position in the heap plus one; 0 means "not queued", so the zero
	// Item is ready to use.
	index int
}

// Queued reports whether the item is in a heap.
func (it *Item[T]) Queued() bool { return it.index != 0 }

// Heap is a binary min-heap of *Item ordered by When. The zero Heap is empty and ready to use.
type Heap[T any] struct {
	items []*Item[T]
}

// Len returns the number of queued items.
func (h *Heap[T]) Len() int { return len(h.items) }

// Min returns the item with the earliest deadline without removing it, or nil when empty.
func (h *Heap[T]) Min() *Item[T] {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

// Push queues it. It reports false, and does nothing, if it is nil or already queued (in this
// or another heap).
func (h *Heap[T]) Push(it *Item[T]) bool {
	if it == nil || it.index != 0 {
		return false
	}
	h.items = append(h.items, it)
	it.index = len(h.items)
	h.up(len(h.items) - 1)
	return true
}

// PopMin removes and returns the earliest item, or nil when empty.
func (h *Heap[T]) PopMin() *Item[T] {
	if len(h.items) == 0 {
		return nil
	}
	it := h.items[0]
	h.removeAt(0)
	return it
}

// Remove takes it out of the heap. It reports false if it was not queued here.
func (h *Heap[T]) Remove(it *Item[T]) bool {
	if !h.owns(it) {
		return false
	}
	h.removeAt(it.index - 1)
	return true
}

// Fix restores heap order after it.When changed. It reports false if it is not queued here.
func (h *Heap[T]) Fix(it *Item[T]) bool {
	if !h.owns(it) {
		return false
	}
	i := it.index - 1
	if !h.down(i) {
		h.up(i)
	}
	return true
}

func (h *Heap[T]) owns(it *Item[T]) bool {
	return it != nil && it.index > 0 && it.index <= len(h.items) && h.items[it.index-1] == it
}

func (h *Heap[T]) removeAt(i int) {
	last := len(h.items) - 1
	it := h.items[i]
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil // let the GC have a removed item
	h.items = h.items[:last]
	it.index = 0
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	// Give memory back after a burst of timers (e.g. a flood of connections that all closed):
	// a quarter-full slice above a small floor is shrunk by half.
	if c := cap(h.items); c > 1024 && len(h.items) < c/4 {
		shrunk := make([]*Item[T], len(h.items), c/2)
		copy(shrunk, h.items)
		h.items = shrunk
	}
}

func (h *Heap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i + 1
	h.items[j].index = j + 1
}

func (h *Heap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h.items[p].When <= h.items[i].When {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts item i towards the leaves and reports whether it moved.
func (h *Heap[T]) down(i int) bool {
	start := i
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.items[r].When < h.items[l].When {
			m = r
		}
		if h.items[i].When <= h.items[m].When {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
