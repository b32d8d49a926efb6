package reactor

import (
	"testing"
	"unsafe"

	"github.com/reactord/reactord/internal/bufpool"
)

// TestOutputGrowthIsLinear appends 24 MiB of output in 4 KiB writes, as AsyncWrite does for a
// goroutine streaming to a client, while the client takes (drains) a little now and then, and
// counts the bytes moved to make room (reallocation or compaction). Making room by the exact
// size asked for, or compacting a mostly unsent buffer every time it fills, is quadratic: above
// the largest pool class (4 MiB) every write copied everything pending.
func TestOutputGrowthIsLinear(t *testing.T) {
	const total, piece = 24 << 20, 4 << 10
	tests := []struct {
		name  string
		every int // drain after this many writes (0: never)
		drain int // bytes the client takes each time
	}{
		{"client does not read", 0, 0},
		{"slow client", 16, 64 << 10},
		{"client keeps up", 1, piece},
		{"client reads in bursts", 256, 1 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pool bufpool.Pool
			var b connIO
			chunk := make([]byte, piece)
			moved, rooms := 0, 0
			for i := 1; i*piece <= total; i++ {
				before, head := unsafe.SliceData(b.out), b.head
				unsent := len(b.out) - b.head
				b.out = appendBuf(&pool, b.out, &b.head, chunk)
				if before != nil && (unsafe.SliceData(b.out) != before || b.head != head) {
					moved += unsent
					rooms++
				}
				if tc.every > 0 && i%tc.every == 0 {
					b.head = min(b.head+tc.drain, len(b.out))
				}
			}
			if moved > 3*total {
				t.Errorf("%d MiB moved to make room for %d MiB written (%d times), want at most %d MiB",
					moved>>20, total>>20, rooms, 3*total>>20)
			}
			if pending := len(b.out) - b.head; cap(b.out) > 2*pending+8<<20 {
				t.Errorf("buffer capacity %d MiB for %d MiB pending", cap(b.out)>>20, pending>>20)
			}
		})
	}
}

// TestInputGrowthIsLinear sends a 24 MiB message that the handler keeps whole until it is
// complete (as a codec does with a request body), and counts the reallocations of the kept
// input and the bytes they copy. Growing it by half a read buffer per read, as it did above the
// largest pool class, copied the whole tail on every read.
func TestInputGrowthIsLinear(t *testing.T) {
	const total = 24 << 20
	type stats struct{ reallocs, copied, calls int }
	done := make(chan stats, 1)
	var st stats
	var last *byte
	lastLen := 0
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		st.calls++
		if p := unsafe.SliceData(in); last != nil && p != last && lastLen > 0 {
			st.reallocs++
			st.copied += lastLen
		}
		last, lastLen = unsafe.SliceData(in), len(in)
		if len(in) < total {
			return 0
		}
		done <- st
		return len(in)
	}}
	_, addr := startServer(t, h, WithLoops(1))
	cl := dial(t, "tcp", addr)
	go cl.Write(make([]byte, total))
	got := <-done
	// The first calls see the loop's shared buffer, then the tail moves to storage of its own
	// (one copy each time), which grows geometrically: a few dozen moves, about 2x the data.
	if got.reallocs > 40 || got.copied > 3*total {
		t.Fatalf("kept input moved %d times (%d MiB copied) over %d reads of %d MiB, want at most 40 times and %d MiB",
			got.reallocs, got.copied>>20, got.calls, total>>20, 3*total>>20)
	}
	t.Logf("%d reads, %d moves, %d MiB copied", got.calls, got.reallocs, got.copied>>20)
}

// TestKeptInputTakenPieceByPiece: many small messages kept in one large tail and taken one per
// OnData call (a client pipelining thousands of requests to a codec that answers them in
// order) must not slide the whole tail after every message.
func TestKeptInputTakenPieceByPiece(t *testing.T) {
	const msgs, size = 16 << 10, 64 // 1 MiB of 64-byte messages
	done := make(chan int, 1)
	var moved, taken int
	var next *byte // where the rest starts if it stays in place
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		if next != nil && unsafe.SliceData(in) != next {
			moved += len(in) // the kept tail was copied (or staged with a new read)
		}
		if len(in) < size {
			next = nil
			return 0
		}
		if taken++; taken == msgs {
			done <- moved
			return size
		}
		c.PauseRead() // one message per call, then on with the next
		c.ResumeRead()
		next = unsafe.SliceData(in[size:])
		return size
	}}
	_, addr := startServer(t, h, WithLoops(1))
	cl := dial(t, "tcp", addr)
	go cl.Write(make([]byte, msgs*size))
	if got := <-done; got > 3*msgs*size {
		t.Fatalf("kept input moved %d MiB while %d MiB of messages were taken one by one", got>>20, msgs*size>>20)
	}
}
