package reactor

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// lineHandler answers one line per OnData call ("got <line>\n") and keeps the rest, as a codec
// answering one request at a time does. For the lines in slow it answers later from a loop
// timer: pausing reading meanwhile and resuming after (the offload pattern), or, with keep,
// reading on and keeping the connection open past the peer's EOF (OnReadEOF) until it is done.
type lineHandler struct {
	slow   map[string]bool
	mu     sync.Mutex
	calls  int
	events []string // "data:<line>", "eof"; under mu
	closed chan error
	keep   bool // OnReadEOF keeps the connection open until the slow answers are out
	owed   int  // slow answers not yet written (loop goroutine)
}

func newLineHandler(slow ...string) *lineHandler {
	h := &lineHandler{slow: map[string]bool{}, closed: make(chan error, 1)}
	for _, s := range slow {
		h.slow[s] = true
	}
	return h
}

func (h *lineHandler) note(ev string) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

func (h *lineHandler) OnOpen(*Conn) {}

func (h *lineHandler) OnData(c *Conn, in []byte) int {
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		return 0
	}
	line := string(in[:i])
	h.note("data:" + line)
	if !h.slow[line] {
		c.Write([]byte("got " + line + "\n"))
		return i + 1
	}
	if !h.keep {
		c.PauseRead()
	}
	h.owed++
	c.Loop().AfterFunc(testsupport.Scale(20*time.Millisecond), func() {
		c.Write([]byte("got " + line + "\n"))
		h.owed--
		c.ResumeRead()
		if h.keep && h.owed == 0 && h.sawEOF() {
			c.Close()
		}
	})
	return i + 1
}

func (h *lineHandler) sawEOF() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events {
		if ev == "eof" {
			return true
		}
	}
	return false
}

func (h *lineHandler) OnClose(c *Conn, err error) { h.closed <- err }

// eofLineHandler is lineHandler with OnReadEOF.
type eofLineHandler struct{ *lineHandler }

func (h eofLineHandler) OnReadEOF(c *Conn) bool {
	h.note("eof")
	return h.keep && h.owed > 0
}

// TestHalfCloseDeliversKeptInput: a client pipelines lines and shuts its writing side at once
// (as curl and scripts do). Every line must be answered before the connection closes with
// io.EOF, whatever the handler did with the kept lines: paused and resumed from a timer,
// consumed one per call without pausing, or paused on the last one.
func TestHalfCloseDeliversKeptInput(t *testing.T) {
	tests := []struct {
		name  string
		send  string
		slow  []string
		eofH  bool // the handler implements ReadEOFHandler
		keep  bool // ... and keeps the connection open for the slow answers
		calls int  // at most this many OnData calls (0: no bound checked)
	}{
		{"paused on every line", "a\nb\nc\n", []string{"a", "b", "c"}, false, false, 0},
		{"resumed before the EOF is read", "slow\na\nb\n", []string{"slow"}, false, false, 0},
		{"one line per call, never paused", "a\nb\nc\n", nil, false, false, 0},
		{"paused on the last kept line", "a\nb\nslow\n", []string{"slow"}, false, false, 0},
		{"paused after the EOF with lines still kept", "a\nslow\nb\n", []string{"slow"}, false, false, 0},
		{"ReadEOFHandler told after the kept lines", "a\nb\nc\n", nil, true, false, 0},
		{"ReadEOFHandler keeps it open for a slow answer", "a\nb\nslow\n", []string{"slow"}, true, true, 0},
		// An incomplete last line can never complete: handed back once, then dropped.
		{"incomplete tail dropped", "a\nb\npartial", nil, false, false, 4},
	}
	for _, b := range backends(t) {
		for _, tc := range tests {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				lh := newLineHandler(tc.slow...)
				lh.keep = tc.keep
				var h Handler = lh
				if tc.eofH {
					h = eofLineHandler{lh}
				}
				_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1))
				cl := dial(t, "tcp", addr)
				// One write, then the half-close: the FIN may arrive with the data or after it.
				if _, err := cl.Write([]byte(tc.send)); err != nil {
					t.Fatal(err)
				}
				if err := cl.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(cl)
				if err != nil {
					t.Fatalf("ReadAll: %v", err)
				}
				var want strings.Builder
				for _, line := range strings.SplitAfter(tc.send, "\n") {
					if strings.HasSuffix(line, "\n") {
						want.WriteString("got " + line)
					}
				}
				if string(got) != want.String() {
					t.Fatalf("got %q, want %q", got, want.String())
				}
				wantErr := io.EOF
				if tc.keep {
					wantErr = nil // the handler closed it
				}
				if err := waitClose(t, lh.closed); err != wantErr {
					t.Fatalf("OnClose err = %v, want %v", err, wantErr)
				}
				lh.mu.Lock()
				defer lh.mu.Unlock()
				if tc.calls > 0 && lh.calls > tc.calls {
					t.Fatalf("OnData called %d times, want at most %d", lh.calls, tc.calls)
				}
				if tc.eofH {
					if n := len(lh.events); n == 0 || lh.events[n-1] != "eof" {
						t.Fatalf("OnReadEOF was not the last event: %v", lh.events)
					}
				}
			})
		}
	}
}

// TestHalfCloseKeptInputBehindBackpressure: the kept lines wait behind output above the
// high-water mark when the EOF is read; they must still be answered once the client reads.
func TestHalfCloseKeptInputBehindBackpressure(t *testing.T) {
	const lines, size = 6, 96 << 10
	answer := bytes.Repeat([]byte("x"), size)
	h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int {
		consumed := 0
		for !c.OutputFull() {
			i := bytes.IndexByte(in[consumed:], '\n')
			if i < 0 {
				break
			}
			c.Write(answer)
			consumed += i + 1
		}
		return consumed
	}})
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			// Small socket buffers and watermarks: one answer fills the output.
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1), WithWatermarks(64<<10, 16<<10),
				WithSocketBuffers(16<<10, 16<<10))
			cl := dial(t, "tcp", addr)
			cl.Write([]byte(strings.Repeat("q\n", lines)))
			cl.(*net.TCPConn).CloseWrite()
			n, err := io.Copy(io.Discard, cl)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if n != lines*size {
				t.Fatalf("got %d bytes, want %d (%d answers)", n, lines*size, lines)
			}
			if err := waitClose(t, closed); !errors.Is(err, io.EOF) {
				t.Fatalf("OnClose err = %v, want io.EOF", err)
			}
		})
	}
}
