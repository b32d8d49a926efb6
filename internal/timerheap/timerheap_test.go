package timerheap

import (
	"math/rand"
	"sort"
	"testing"
)

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
			var h Heap[int]
			items := make([]*Item[int], tc.n)
			for i := range items {
				items[i] = &Item[int]{When: rng.Int63n(1000), Value: i}
				if !h.Push(items[i]) {
					t.Fatalf("push %d failed", i)
				}
			}
			removed := map[int]bool{}
			for _, i := range rng.Perm(tc.n)[:tc.remove] {
				if !h.Remove(items[i]) {
					t.Fatalf("remove %d failed", i)
				}
				if items[i].Queued() {
					t.Fatalf("item %d still queued", i)
				}
				if h.Remove(items[i]) {
					t.Fatalf("second remove of %d succeeded", i)
				}
				removed[i] = true
			}
			var want []int64
			for i, it := range items {
				if !removed[i] {
					want = append(want, it.When)
				}
			}
			sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
			var got []int64
			for h.Len() > 0 {
				got = append(got, h.PopMin().When)
			}
			if len(got) != len(want) {
				t.Fatalf("popped %d items, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("pop %d = %d, want %d", i, got[i], want[i])
				}
			}
			if h.PopMin() != nil || h.Min() != nil {
				t.Fatal("empty heap returned an item")
			}
		})
	}
}

func TestFixMovesBothWays(t *testing.T) {
	var h Heap[string]
	a := &Item[string]{When: 10, Value: "a"}
	b := &Item[string]{When: 20, Value: "b"}
	c := &Item[string]{When: 30, Value: "c"}
	for _, it := range []*Item[string]{a, b, c} {
		h.Push(it)
	}
	if h.Push(a) {
		t.Fatal("double push accepted")
	}
	c.When = 5
	h.Fix(c)
	if h.Min() != c {
		t.Fatalf("min = %s, want c", h.Min().Value)
	}
	c.When = 50
	h.Fix(c)
	if h.Min() != a {
		t.Fatalf("min = %s, want a", h.Min().Value)
	}
	var other Heap[string]
	if other.Fix(a) || other.Remove(a) {
		t.Fatal("foreign heap accepted an item it does not own")
	}
	if h.Fix(nil) || h.Remove(nil) || h.Push(nil) {
		t.Fatal("nil item accepted")
	}
}

func BenchmarkPushRemove(b *testing.B) {
	var h Heap[int]
	items := make([]*Item[int], 10000)
	for i := range items {
		items[i] = &Item[int]{When: int64(i * 7919 % 10000)}
		h.Push(items[i])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it := items[i%len(items)]
		h.Remove(it)
		it.When += 10000
		h.Push(it)
	}
}
