package reactor

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// ringFileState is what loop l's ring holds for files, read on the loop.
type ringFileState struct {
	rounds                uint64 // file → pipe → socket chains queued so far
	pipes, files, orphans int    // idle pooled pipes, connections holding one, closed ones' chains
	roomWaits, spliceLive int    // connections waiting for room, with a splice in flight
	inPipe                int    // bytes waiting in connections' pipes
}

func ringFiles(t *testing.T, l *Loop) ringFileState {
	t.Helper()
	got := make(chan ringFileState, 1)
	if err := l.Post(func() {
		r := l.ring
		st := ringFileState{rounds: r.rounds, pipes: len(r.pipes), files: len(r.files), orphans: len(r.fileOrphans)}
		for fd, f := range r.files {
			st.inPipe += f.inPipe
			if r.slots[fd].st&sRoom != 0 {
				st.roomWaits++
			}
			if f.in || f.out {
				st.spliceLive++
			}
		}
		got <- st
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-got:
		return st
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("the loop did not run a posted task")
		return ringFileState{}
	}
}

func needRing(t *testing.T) {
	t.Helper()
	if _, err := CheckPoller(uringMode); err != nil {
		t.Skipf("io_uring completion mode unavailable here: %v", err)
	}
}

// randomFile writes n random bytes to a new file and returns its path and content.
func randomFile(t testing.TB, name string, n int) (string, []byte) {
	t.Helper()
	content := make([]byte, n)
	rand.New(rand.NewSource(int64(n))).Read(content)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

// sendFileHandler answers every request with n bytes of the file at path from off.
func sendFileHandler(path string, off, n int64, closeAfter bool) HandlerFuncs {
	return HandlerFuncs{Data: func(c *Conn, in []byte) int {
		f, err := os.Open(path)
		if err != nil {
			c.CloseNow()
			return len(in)
		}
		defer f.Close()
		if err := c.SendFile(f, off, n); err != nil {
			c.CloseNow()
		}
		if closeAfter {
			c.Close()
		}
		return len(in)
	}}
}

// TestRingSendFileLarge: a file several times the pipe's size, from an offset inside a page,
// arrives byte-exact through the ring's splices, and its bytes went round after round.
func TestRingSendFileLarge(t *testing.T) {
	needRing(t)
	const size = 6<<20 + 123
	path, content := randomFile(t, "large", size)
	s, addr := startServer(t, sendFileHandler(path, 1000, size-1000, true), WithPoller(uringMode), WithLoops(1))
	c := dial(t, "tcp", addr)
	c.Write([]byte("get"))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content[1000:]) {
		t.Fatalf("got %d bytes, want %d, or they differ", len(got), size-1000)
	}
	st := ringFiles(t, s.loops[0])
	if st.rounds < size/ringPipeSize {
		t.Fatalf("%d splice rounds for %d bytes, want at least %d (one per pipe's worth)", st.rounds, size, size/ringPipeSize)
	}
	if st.files != 0 || st.orphans != 0 || st.pipes != 1 {
		t.Fatalf("after the transfer the ring holds %+v, want only one pooled pipe", st)
	}
}

// TestSendFileOrder: files between written bytes, sizes above and below the threshold from
// which the completion mode splices (ringSpliceMin), arrive in the order they were queued, on
// every backend.
func TestSendFileOrder(t *testing.T) {
	pathA, a := randomFile(t, "a", int(ringSpliceMin)+300<<10+7)
	pathB, b := randomFile(t, "b", 70<<10)
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		fa, err := os.Open(pathA)
		if err != nil {
			panic(err)
		}
		defer fa.Close()
		fb, err := os.Open(pathB)
		if err != nil {
			panic(err)
		}
		defer fb.Close()
		c.Write([]byte("<"))
		mustSendFile(c, fa, 0, int64(len(a)))
		c.Write([]byte("|"))
		mustSendFile(c, fb, 5, int64(len(b))-10)
		mustSendFile(c, fa, 4095, 100)
		c.Write([]byte("|"))
		mustSendFile(c, fb, 0, 1)
		c.Write([]byte(">"))
		c.Close()
		return len(in)
	}}
	var want []byte
	want = append(want, '<')
	want = append(want, a...)
	want = append(want, '|')
	want = append(want, b[5:len(b)-5]...)
	want = append(want, a[4095:4195]...)
	want = append(want, '|', b[0], '>')
	for _, be := range backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			s, addr := startServer(t, h, WithPoller(be.Name), WithLoops(1))
			c := dial(t, "tcp", addr)
			c.Write([]byte("get"))
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d, or out of order", len(got), len(want))
			}
			if be.Name == uringMode {
				if st := ringFiles(t, s.loops[0]); st.rounds == 0 {
					t.Fatal("the large file did not go through the ring's splices")
				}
			}
		})
	}
}

func mustSendFile(c *Conn, f *os.File, off, n int64) {
	if err := c.SendFile(f, off, n); err != nil {
		panic(err)
	}
}

// TestRingSendFileSlowReader: a client that reads nothing until the server's socket is full
// (the socket splice answered EAGAIN, the ring polls for room, bytes wait in the pipe) still
// gets every byte once it reads.
func TestRingSendFileSlowReader(t *testing.T) {
	needRing(t)
	const size = 16 << 20
	path, content := randomFile(t, "slow", size)
	s, addr := startServer(t, sendFileHandler(path, 0, size, true), WithPoller(uringMode), WithLoops(1))
	c := dial(t, "tcp", addr)
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	c.Write([]byte("get"))
	l := s.loops[0]
	testsupport.Eventually(t, 10*time.Second, "the socket full, a poll for room armed", func() bool {
		st := ringFiles(t, l)
		return st.roomWaits == 1 && st.inPipe > 0
	})
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("got %d bytes, want %d, or they differ", len(got), size)
	}
}

// TestRingSendFileCloseMidFile: connections that end in the middle of a file — the client
// resets, or the handler closes while splices are in flight — leave no descriptor behind: the
// pipes go back to the pool or are closed, the orphaned chains' descriptors are closed when
// their completions arrive, and closing the server closes the pool.
func TestRingSendFileCloseMidFile(t *testing.T) {
	needRing(t)
	const size = 32 << 20
	path, content := randomFile(t, "mid", size)
	before := countFDs()
	if before < 0 {
		t.Skip("no /proc/self/fd")
	}
	var closed atomic.Int32
	var conns atomic.Pointer[Conn]
	h := HandlerFuncs{
		Data: func(c *Conn, in []byte) int {
			conns.Store(c)
			return sendFileHandler(path, 0, size, false).Data(c, in)
		},
		Close: func(*Conn, error) { closed.Add(1) },
	}
	s, addr := startServer(t, h, WithPoller(uringMode), WithLoops(1))
	l := s.loops[0]
	base := countFDs()
	const rounds = 8
	buf := make([]byte, 256<<10)
	for i := range rounds {
		c := dial(t, "tcp", addr)
		c.Write([]byte("get"))
		// Each transfer starts with the file's first bytes: a pipe given back to the pool with
		// bytes of an earlier one in it would put those first.
		if _, err := io.ReadFull(c, buf[:(i+1)*20000]); err != nil || !bytes.Equal(buf[:(i+1)*20000], content[:(i+1)*20000]) {
			t.Fatalf("connection %d: the file's start did not arrive intact (%v)", i, err)
		}
		if i%2 == 0 {
			// The server closes while the file streams to a reader that keeps reading
			// (reading is paused while the file is pending, so the loop is told by a task).
			go io.Copy(io.Discard, c)
			if err := l.Post(func() { conns.Load().CloseNow() }); err != nil {
				t.Fatal(err)
			}
		} else {
			// The client resets.
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
		testsupport.Eventually(t, 10*time.Second, fmt.Sprintf("connection %d closed", i), func() bool {
			return closed.Load() == int32(i+1)
		})
		c.Close()
	}
	// A whole transfer after all that arrives intact too.
	c := dial(t, "tcp", addr)
	c.Write([]byte("get"))
	whole := make([]byte, size)
	if _, err := io.ReadFull(c, whole); err != nil || !bytes.Equal(whole, content) {
		t.Fatalf("a transfer after the closes did not arrive intact (%v)", err)
	}
	c.Close()
	testsupport.Eventually(t, 10*time.Second, "the last connection closed", func() bool {
		return closed.Load() == rounds+1
	})
	testsupport.Eventually(t, 10*time.Second, "the ring released every file descriptor", func() bool {
		st := ringFiles(t, l)
		return st.files == 0 && st.orphans == 0 && countFDs() == base+2*st.pipes
	})
	if st := ringFiles(t, l); st.rounds == 0 {
		t.Fatal("no splice round ran")
	}
	s.Close()
	testsupport.Eventually(t, 10*time.Second, "every descriptor closed with the server", func() bool {
		return countFDs() == before
	})
}
