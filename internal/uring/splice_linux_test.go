package uring

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPrepSpliceFields checks PrepSplice against the kernel ABI (liburing's
// io_uring_prep_splice): fd is the output, off its offset, splice_off_in shares addr,
// splice_fd_in the file_index union, splice_flags the op flags.
func TestPrepSpliceFields(t *testing.T) {
	var s SQE
	s.PrepSplice(7, 4096, 9, ^uint64(0), 65536, unix.SPLICE_F_MOVE)
	want := SQE{Opcode: OpSplice, FD: 9, Off: ^uint64(0), Addr: 4096, SpliceFDIn: 7, Len: 65536, OpFlags: unix.SPLICE_F_MOVE}
	if s != want {
		t.Fatalf("PrepSplice filled %+v, want %+v", s, want)
	}
}

// TestSpliceFileThroughPipe drives what the reactor's completion mode relies on to send a
// file: two linked splices, file → pipe then pipe → a non-blocking socket, and what the
// kernel answers in each case that matters.
func TestSpliceFileThroughPipe(t *testing.T) {
	r := newRing(t, Config{Entries: 8, Features: FeatNoDrop | FeatExtArg, Ops: []uint8{OpSplice}})
	data := make([]byte, 200<<10)
	rand.New(rand.NewSource(1)).Read(data)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	newPipe := func() [2]int {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
		return p
	}
	chain := func(p [2]int, sock int, off uint64, n uint32) (in, out int32) {
		s := r.NextSQE()
		s.PrepSplice(int(f.Fd()), off, p[1], ^uint64(0), n, 0)
		s.Flags |= SQEIOLink
		s.UserData = 1
		s = r.NextSQE()
		s.PrepSplice(p[0], ^uint64(0), sock, ^uint64(0), n, 0)
		s.UserData = 2
		for _, c := range reap(t, r, 2) {
			if c.UserData == 1 {
				in = c.Res
			} else {
				out = c.Res
			}
		}
		return in, out
	}
	a, b := socketpair(t)
	buf := make([]byte, 256<<10)

	// The whole chain: the bytes of the file's range arrive.
	p := newPipe()
	if in, out := chain(p, a, 4096, 32<<10); in != 32<<10 || out != 32<<10 {
		t.Fatalf("chain: in %d, out %d, want %d each", in, out, 32<<10)
	}
	if n, err := unix.Read(b, buf); err != nil || !bytes.Equal(buf[:n], data[4096:4096+32<<10]) {
		t.Fatalf("received %d bytes (%v), not the file's range", n, err)
	}

	// A pipe holds pages, not bytes: from an offset inside a page, a request of the pipe's
	// full size is short by that offset. A short splice fails the link, so the second is
	// cancelled and the bytes wait in the pipe.
	size, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	in, out := chain(p, a, 1000, uint32(size))
	if in != int32(size-1000) || out != -int32(unix.ECANCELED) {
		t.Fatalf("unaligned full-pipe chain: in %d, out %d, want %d, -ECANCELED", in, out, size-1000)
	}
	unix.Read(p[0], buf) // empty it

	// The file's end: 0 from the first, the second is cancelled.
	if in, out := chain(p, a, uint64(len(data)), 4096); in != 0 || out != -int32(unix.ECANCELED) {
		t.Fatalf("chain at EOF: in %d, out %d, want 0, -ECANCELED", in, out)
	}

	// A full non-blocking socket: io_uring does not poll for room before a splice (unlike a
	// SEND), the second splice fails with EAGAIN and the bytes wait in the pipe.
	for {
		if _, err := unix.Write(a, buf); err != nil {
			break
		}
	}
	if in, out := chain(p, a, 0, 8192); in != 8192 || out != -int32(unix.EAGAIN) {
		t.Fatalf("chain to a full socket: in %d, out %d, want 8192, -EAGAIN", in, out)
	}
}

// TestSpliceLinkedLooksUpLate: a splice linked behind another request names its output
// descriptor by number, and the kernel looks the number up only when the splice runs, not
// when it is submitted. Here the number is made to name another socket in between (dup3),
// and the bytes go there. This is why the reactor keeps a closing connection's socket (and
// file and pipe) open until its splices are done: closed earlier, the number could be reused
// by a new connection, which would get the old one's file.
func TestSpliceLinkedLooksUpLate(t *testing.T) {
	r := newRing(t, Config{Entries: 8, Features: FeatNoDrop | FeatExtArg, Ops: []uint8{OpSplice, OpPollAdd}})
	var trig, data [2]int
	for _, p := range []*[2]int{&trig, &data} {
		if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	}
	if _, err := unix.Write(data[1], []byte("late")); err != nil {
		t.Fatal(err)
	}
	a, aPeer := socketpair(t)
	b, bPeer := socketpair(t)

	s := r.NextSQE()
	s.PrepPollAdd(trig[0], unix.POLLIN, false)
	s.Flags |= SQEIOLink
	s.UserData = 1
	s = r.NextSQE()
	s.PrepSplice(data[0], ^uint64(0), a, ^uint64(0), 4, 0)
	s.UserData = 2
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	// a's number now names b's socket (the old one is closed, but for any reference the
	// kernel may have taken at submission).
	if err := unix.Dup3(b, a, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(trig[1], []byte{1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range reap(t, r, 2) {
		if c.UserData == 2 && c.Res != 4 {
			t.Fatalf("splice: %d, want 4", c.Res)
		}
	}
	buf := make([]byte, 16)
	if n, err := unix.Read(bPeer, buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("the socket the number names when the splice runs got %q (%v), want \"late\"", buf[:max(n, 0)], err)
	}
	// The socket the number named at submission got nothing, and dup3 closing its descriptor
	// released it (its peer reads EOF): the queued splice held no reference to it.
	if n, err := unix.Read(aPeer, buf); n != 0 || err != nil {
		t.Fatalf("the socket the number named at submission: read %q (%v), want EOF", buf[:max(n, 0)], err)
	}
}
