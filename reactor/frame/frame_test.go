package frame

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// simulate applies the reactor's consumed-count rule to chunks arriving one after another:
// each call sees the kept tail plus the new chunk. It returns the frames in order, and the
// first framing error.
func simulate(f Framer, chunks [][]byte) (frames []string, err error) {
	var tail []byte
	for _, ch := range chunks {
		in := append(tail, ch...)
		consumed := 0
		for consumed < len(in) {
			p, n, err := f.Next(in[consumed:])
			if err != nil {
				return frames, err
			}
			if n == 0 {
				break
			}
			if n < 0 || n > len(in)-consumed {
				panic("bad n")
			}
			frames = append(frames, string(p))
			consumed += n
		}
		tail = append([]byte(nil), in[consumed:]...)
	}
	return frames, nil
}

func bytesOf(parts ...string) [][]byte {
	out := make([][]byte, len(parts))
	for i, p := range parts {
		out[i] = []byte(p)
	}
	return out
}

func TestLines(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		chunks  []string
		want    []string
		wantErr bool
	}{
		{"one line", 10, []string{"PING\r\n"}, []string{"PING"}, false},
		{"bare LF", 10, []string{"PING\n"}, []string{"PING"}, false},
		{"many per read", 10, []string{"a\r\nb\nc\r\n"}, []string{"a", "b", "c"}, false},
		{"split across reads", 10, []string{"GE", "T k", "\r", "\nSE", "T k v\n"}, []string{"GET k", "SET k v"}, false},
		{"empty lines", 10, []string{"\r\n\n"}, []string{"", ""}, false},
		{"exactly max with CRLF", 4, []string{"abcd\r\n"}, []string{"abcd"}, false},
		{"exactly max, CR and LF split", 4, []string{"abcd\r", "\n"}, []string{"abcd"}, false},
		{"exactly max with LF", 4, []string{"abcd\n"}, []string{"abcd"}, false},
		{"partial line kept", 4, []string{"abcd"}, nil, false},
		{"one over max with newline", 4, []string{"abcde\n"}, nil, true},
		{"one over max with CRLF", 4, []string{"abcde\r\n"}, nil, true},
		{"over max without newline, early", 4, []string{"abcde"}, nil, true},
		{"over max, byte by byte", 4, []string{"a", "b", "c", "d", "e", "f"}, nil, true},
		{"max then CR waits", 4, []string{"abcd\r"}, nil, false},
		{"max then CR then junk", 4, []string{"abcd\rx"}, nil, true},
		{"good lines then a long one", 3, []string{"ok\nfine\n"}, []string{"ok"}, true},
		{"CR inside a line is data", 10, []string{"a\rb\n"}, []string{"a\rb"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := simulate(Lines{Max: tc.max}, bytesOf(tc.chunks...))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrTooLong) {
				t.Fatalf("err = %v, want ErrTooLong", err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("frames %q, want %q", got, tc.want)
			}
		})
	}
}

func prefixed(size int, little bool, payload string) []byte {
	b := make([]byte, 8)
	var order binary.ByteOrder = binary.BigEndian
	if little {
		order = binary.LittleEndian
	}
	switch size {
	case 1:
		b[0] = byte(len(payload))
	case 2:
		order.PutUint16(b, uint16(len(payload)))
	case 4:
		order.PutUint32(b, uint32(len(payload)))
	case 8:
		order.PutUint64(b, uint64(len(payload)))
	}
	return append(b[:size], payload...)
}

func TestLengthPrefixed(t *testing.T) {
	for _, size := range []int{1, 2, 4, 8} {
		for _, little := range []bool{false, true} {
			f := LengthPrefixed{Size: size, Max: 100, LittleEndian: little}
			stream := append(append(prefixed(size, little, "hello"), prefixed(size, little, "")...), prefixed(size, little, "world!")...)
			// Every way of cutting the stream in two, and byte by byte.
			for cut := 0; cut <= len(stream); cut++ {
				got, err := simulate(f, [][]byte{stream[:cut], stream[cut:]})
				if err != nil || strings.Join(got, "|") != "hello||world!" {
					t.Fatalf("size %d little %v cut %d: %q, %v", size, little, cut, got, err)
				}
			}
			var bytewise [][]byte
			for i := range stream {
				bytewise = append(bytewise, stream[i:i+1])
			}
			if got, err := simulate(f, bytewise); err != nil || len(got) != 3 {
				t.Fatalf("size %d byte by byte: %q, %v", size, got, err)
			}
			// A prefix above Max fails as soon as the prefix is complete.
			long := prefixed(size, little, strings.Repeat("x", 101))
			if _, err := simulate(f, [][]byte{long[:size]}); !errors.Is(err, ErrTooLong) {
				t.Fatalf("size %d: prefix 101 > Max 100: err = %v, want ErrTooLong", size, err)
			}
		}
	}
	// An 8-byte prefix beyond int range is too long, not a negative length.
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := (LengthPrefixed{Size: 8, Max: 1 << 20}).Next(huge); !errors.Is(err, ErrTooLong) {
		t.Fatalf("huge prefix: %v", err)
	}
}

func TestNewHandlerValidates(t *testing.T) {
	frameFn := func(*reactor.Conn, []byte) error { return nil }
	tests := []struct {
		name string
		f    Framer
		fn   Funcs
		want string
	}{
		{"nil framer", nil, Funcs{Frame: frameFn}, "nil Framer"},
		{"nil frame func", Lines{Max: 1}, Funcs{}, "nil Funcs.Frame"},
		{"lines max 0", Lines{}, Funcs{Frame: frameFn}, "frame.Lines{Max: 0}: want Max > 0"},
		{"prefix size 3", LengthPrefixed{Size: 3, Max: 1}, Funcs{Frame: frameFn}, "frame.LengthPrefixed{Size: 3}: want 1, 2, 4 or 8"},
		{"prefix max -1", LengthPrefixed{Size: 2, Max: -1}, Funcs{Frame: frameFn}, "frame.LengthPrefixed{Max: -1}: want Max > 0"},
	}
	for _, tc := range tests {
		h, err := NewHandler(tc.f, tc.fn)
		if !errors.Is(err, ErrInvalidArgument) || h != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewHandler = %v, %v; want ErrInvalidArgument naming %q", tc.name, h, err, tc.want)
		}
	}
}

// serve runs h on a one-loop server and returns its address.
func serve(t *testing.T, h reactor.Handler, opts ...reactor.Option) string {
	_, addr := serveSrv(t, h, opts...)
	return addr
}

func serveSrv(t *testing.T, h reactor.Handler, opts ...reactor.Option) (*reactor.Server, string) {
	t.Helper()
	s, err := reactor.NewServer(h, append([]reactor.Option{reactor.WithLoops(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testsupport.Scale(20 * time.Second)))
	t.Cleanup(func() { c.Close() })
	return c
}

// recorder collects what the callbacks saw.
type recorder struct {
	mu     sync.Mutex
	frames []string
	errs   []error
	closed chan error
}

func newRecorder() *recorder { return &recorder{closed: make(chan error, 1)} }

func (r *recorder) funcs(onFrame func(c *reactor.Conn, p []byte) error) Funcs {
	return Funcs{
		Frame: func(c *reactor.Conn, p []byte) error {
			r.mu.Lock()
			r.frames = append(r.frames, string(p))
			r.mu.Unlock()
			return onFrame(c, p)
		},
		Error: func(c *reactor.Conn, err error) {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
			c.Write([]byte("-ERR " + err.Error() + "\r\n"))
		},
		Close: func(c *reactor.Conn, err error) { r.closed <- err },
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

func echoLine(c *reactor.Conn, p []byte) error {
	c.Write(p)
	c.Write([]byte("\n"))
	return nil
}

func TestHandlerLinesOverTCP(t *testing.T) {
	rec := newRecorder()
	h, err := NewHandler(Lines{Max: 16}, rec.funcs(func(c *reactor.Conn, p []byte) error {
		if string(p) == "QUIT" {
			c.Write([]byte("bye\n"))
			return ErrClose
		}
		return echoLine(c, p)
	}))
	if err != nil {
		t.Fatal(err)
	}
	s, addr := serveSrv(t, h)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	expect := func(want string) {
		t.Helper()
		line, err := br.ReadString('\n')
		if err != nil || line != want+"\n" {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	// Split across reads: each byte is read by the server before the next is sent; the
	// handler sees the line once, when its newline arrives.
	for i, b := range []byte("split\r\n") {
		c.Write([]byte{b})
		testsupport.Eventually(t, 0, "byte read", func() bool { return s.Stats().BytesIn == uint64(i+1) })
		if i < 6 && rec.count() != 0 {
			t.Fatalf("a frame was handed out after %d bytes of \"split\\r\\n\"", i+1)
		}
	}
	expect("split")
	// Many per read, pipelined.
	c.Write([]byte("one\ntwo\r\nthree\n"))
	expect("one")
	expect("two")
	expect("three")
	// QUIT ends the connection quietly after its reply.
	c.Write([]byte("QUIT\r\nnever-read\n"))
	expect("bye")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after QUIT: %v, want EOF", err)
	}
	if err := <-rec.closed; err != nil {
		t.Fatalf("OnClose err = %v, want nil", err)
	}
	if got := strings.Join(rec.frames, "|"); got != "split|one|two|three|QUIT" || len(rec.errs) != 0 {
		t.Fatalf("frames %q errs %v", got, rec.errs)
	}
}

func TestHandlerOverlongLineGetsErrorThenClose(t *testing.T) {
	rec := newRecorder()
	h, err := NewHandler(Lines{Max: 8}, rec.funcs(echoLine))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, h)
	c := dial(t, addr)
	// A good line, then one that never ends: the error comes once 10 bytes have arrived,
	// without waiting for a newline.
	c.Write([]byte("ok\n0123456789"))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "ok\n-ERR frame: message too long: line longer than 8 bytes\r\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if err := <-rec.closed; err != nil {
		t.Fatalf("OnClose err = %v", err)
	}
	if len(rec.errs) != 1 || !errors.Is(rec.errs[0], ErrTooLong) {
		t.Fatalf("errors %v, want one ErrTooLong", rec.errs)
	}
}

func TestHandlerFrameErrorReported(t *testing.T) {
	rec := newRecorder()
	bad := errors.New("unknown command")
	h, err := NewHandler(LengthPrefixed{Size: 2, Max: 64}, rec.funcs(func(c *reactor.Conn, p []byte) error {
		if string(p) == "boom" {
			return bad
		}
		c.Write(prefixed(2, false, strings.ToUpper(string(p))))
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, h)
	c := dial(t, addr)
	var in []byte
	for _, p := range []string{"a", "bc", "boom", "never"} {
		in = append(in, prefixed(2, false, p)...)
	}
	c.Write(in)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := string(prefixed(2, false, "A")) + string(prefixed(2, false, "BC")) + "-ERR unknown command\r\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	<-rec.closed
	if len(rec.errs) != 1 || rec.errs[0] != bad || strings.Join(rec.frames, "|") != "a|bc|boom" {
		t.Fatalf("frames %q errs %v", rec.frames, rec.errs)
	}
}

// TestHandlerStopsAtOutputFull: with a tiny high-water mark, every answer fills the output,
// so the handler hands out one frame per OnData and leaves the rest kept; a client that reads
// only after sending everything still gets every answer, in order.
func TestHandlerStopsAtOutputFull(t *testing.T) {
	rec := newRecorder()
	answer := bytes.Repeat([]byte("y"), 4096)
	h, err := NewHandler(Lines{Max: 32}, rec.funcs(func(c *reactor.Conn, p []byte) error {
		c.Write(p)
		c.Write(answer)
		c.Write([]byte("\n"))
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, h, reactor.WithWatermarks(1024, 0), reactor.WithSocketBuffers(4096, 4096))
	c := dial(t, addr)
	const n = 200
	var req bytes.Buffer
	for i := 0; i < n; i++ {
		req.WriteString("req\n")
	}
	c.Write(req.Bytes())
	br := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != "req"+string(answer)+"\n" {
			t.Fatalf("answer %d: %d bytes, %v", i, len(line), err)
		}
	}
	if got := rec.count(); got != n {
		t.Fatalf("%d frames, want %d", got, n)
	}
}

// TestHandlerErrStopOneAtATime: a frame function that hands each request to a worker pauses
// reading and returns ErrStop; the pipelined requests behind it wait (kept) until the answer is
// written and reading resumes, so they are answered one at a time, in order.
func TestHandlerErrStopOneAtATime(t *testing.T) {
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	h, err := NewHandler(Lines{Max: 16}, Funcs{Frame: func(c *reactor.Conn, p []byte) error {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		line := string(p) // p is only valid during the call
		c.PauseRead()
		go func() { // the "worker"
			mu.Lock()
			inFlight--
			mu.Unlock()
			c.Loop().Post(func() {
				c.Write([]byte("done " + line + "\n"))
				c.ResumeRead()
			})
		}()
		return ErrStop
	}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, h)
	c := dial(t, addr)
	c.Write([]byte("a\nb\nc\nd\n"))
	br := bufio.NewReader(c)
	for _, want := range []string{"a", "b", "c", "d"} {
		line, err := br.ReadString('\n')
		if err != nil || line != "done "+want+"\n" {
			t.Fatalf("got %q, %v; want done %s", line, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxInFlight != 1 {
		t.Fatalf("%d requests in flight at once, want 1", maxInFlight)
	}
}
