package timerheap

import (
	"math/rand"
	"sort"
	"testing"
)

// owner is a test owner: it records the position the heap gives it.
type owner struct {
	id  int
	idx int
}

type ref struct{ o *owner }

func (r ref) SetHeapIndex(i int) { r.o.idx = i }

// check verifies the heap property and that every owner knows its entry's position.
func check(t *testing.T, h *Heap[ref]) {
	t.Helper()
	for i, e := range h.es {
		if e.Value.o.idx != i+1 {
			t.Fatalf("entry %d (owner %d) believes it is at %d", i, e.Value.o.id, e.Value.o.idx-1)
		}
		if i > 0 && h.es[(i-1)/2].When > e.When {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}

func TestHeapOrderAndRemove(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		remove int
		seed   int64
	}{
		{"empty", 0, 0, 1},
		{"one", 1, 0, 2},
		{"small", 10, 3, 3},
		{"large", 5000, 1700, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(tc.seed))
			var h Heap[ref]
			owners := make([]*owner, tc.n)
			whens := make([]int64, tc.n)
			for i := range owners {
				owners[i] = &owner{id: i}
				whens[i] = rng.Int63n(1000)
				h.Push(whens[i], ref{owners[i]})
			}
			check(t, &h)
			removed := map[int]bool{}
			for _, i := range rng.Perm(tc.n)[:tc.remove] {
				idx := owners[i].idx
				if w, ok := h.When(idx); !ok || w != whens[i] {
					t.Fatalf("When(%d) = %d, %v; want %d", idx, w, ok, whens[i])
				}
				if !h.Remove(idx) {
					t.Fatalf("remove %d failed", i)
				}
				if owners[i].idx != 0 {
					t.Fatalf("owner %d still has index %d", i, owners[i].idx)
				}
				removed[i] = true
			}
			check(t, &h)
			var want []int64
			for i, w := range whens {
				if !removed[i] {
					want = append(want, w)
				}
			}
			sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
			var got []int64
			for h.Len() > 0 {
				e, ok := h.PopMin()
				if !ok || e.Value.o.idx != 0 {
					t.Fatalf("pop: ok %v, owner index %d", ok, e.Value.o.idx)
				}
				got = append(got, e.When)
			}
			if len(got) != len(want) {
				t.Fatalf("popped %d entries, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("pop %d = %d, want %d", i, got[i], want[i])
				}
			}
			if _, ok := h.PopMin(); ok {
				t.Fatal("empty heap popped an entry")
			}
			if _, ok := h.Min(); ok {
				t.Fatal("empty heap has a minimum")
			}
		})
	}
}

func TestFixMovesBothWays(t *testing.T) {
	var h Heap[ref]
	a, b, c := &owner{id: 'a'}, &owner{id: 'b'}, &owner{id: 'c'}
	h.Push(10, ref{a})
	h.Push(20, ref{b})
	h.Push(30, ref{c})
	if !h.Fix(c.idx, 5) {
		t.Fatal("fix c")
	}
	if e, _ := h.Min(); e.Value.o != c {
		t.Fatalf("min = %c, want c", e.Value.o.id)
	}
	if !h.Fix(c.idx, 50) {
		t.Fatal("fix c again")
	}
	if e, _ := h.Min(); e.Value.o != a {
		t.Fatalf("min = %c, want a", e.Value.o.id)
	}
	check(t, &h)
	for _, idx := range []int{0, -1, 4} {
		if h.Fix(idx, 1) || h.Remove(idx) {
			t.Fatalf("index %d accepted", idx)
		}
		if _, ok := h.When(idx); ok {
			t.Fatalf("When(%d) answered", idx)
		}
	}
}

// TestRandomOps mixes pushes, fixes, removes and pops against a plain list.
func TestRandomOps(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var h Heap[ref]
	live := map[*owner]int64{}
	var all []*owner
	for step := 0; step < 20000; step++ {
		switch op := rng.Intn(4); {
		case op == 0 || len(live) == 0:
			o := &owner{id: len(all)}
			all = append(all, o)
			w := rng.Int63n(1 << 20)
			h.Push(w, ref{o})
			live[o] = w
		case op == 1:
			o := all[rng.Intn(len(all))]
			if _, ok := live[o]; ok {
				w := rng.Int63n(1 << 20)
				h.Fix(o.idx, w)
				live[o] = w
			}
		case op == 2:
			o := all[rng.Intn(len(all))]
			if _, ok := live[o]; ok {
				h.Remove(o.idx)
				delete(live, o)
			}
		default:
			e, _ := h.PopMin()
			for _, w := range live {
				if w < e.When {
					t.Fatalf("popped %d while %d was queued", e.When, w)
				}
			}
			delete(live, e.Value.o)
		}
		if h.Len() != len(live) {
			t.Fatalf("len %d, want %d", h.Len(), len(live))
		}
	}
	check(t, &h)
}

func BenchmarkPushRemove(b *testing.B) {
	var h Heap[ref]
	owners := make([]*owner, 10000)
	whens := make([]int64, len(owners))
	for i := range owners {
		owners[i] = &owner{id: i}
		whens[i] = int64(i * 7919 % 10000)
		h.Push(whens[i], ref{owners[i]})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(owners)
		h.Remove(owners[k].idx)
		whens[k] += 10000
		h.Push(whens[k], ref{owners[k]})
	}
}
