package http_test

import (
	"errors"
	"strconv"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
)

func begin(t *testing.T, raw string) (*rhttp.ResponseWriter, *rhttp.Request) {
	t.Helper()
	p, err := rhttp.NewParser(rhttp.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, req, err := p.Parse([]byte(raw))
	if err != nil || req == nil {
		t.Fatalf("parse: %v", err)
	}
	w := new(rhttp.ResponseWriter)
	w.Begin(nil, req)
	return w, req
}

// TestWriterErrRecordsFirstMisuse: every kind of ignored ResponseWriter error shows up in Err,
// naming the method, and Begin clears it.
func TestWriterErrRecordsFirstMisuse(t *testing.T) {
	tests := []struct {
		name   string
		misuse func(w *rhttp.ResponseWriter)
		want   error
		msg    string
	}{
		{"header after body", func(w *rhttp.ResponseWriter) {
			w.SetContentLength(2)
			w.WriteString("ok")
			w.Set("X-Late", "1")
		}, rhttp.ErrHeadersSent, "http: ResponseWriter.Set: http: headers already written"},
		{"status after flush", func(w *rhttp.ResponseWriter) {
			w.Flush()
			w.SetStatus(404)
		}, rhttp.ErrHeadersSent, "ResponseWriter.SetStatus: "},
		{"bad header value", func(w *rhttp.ResponseWriter) { w.Add("X", "a\r\nb") }, rhttp.ErrInvalidHeaderValue, "ResponseWriter.Add: "},
		{"bad header name", func(w *rhttp.ResponseWriter) { w.SetBytes("", nil) }, rhttp.ErrInvalidHeaderName, "ResponseWriter.SetBytes: "},
		{"body too long", func(w *rhttp.ResponseWriter) {
			w.SetContentLength(1)
			w.Write([]byte("too long"))
		}, rhttp.ErrContentLengthMismatch, "ResponseWriter.Write: "},
		{"body too short", func(w *rhttp.ResponseWriter) {
			w.SetContentLength(10)
			w.Write([]byte("short"))
			w.Finish()
		}, rhttp.ErrContentLengthMismatch, "ResponseWriter.Finish: "},
		{"body on 204", func(w *rhttp.ResponseWriter) {
			w.SetStatus(204)
			w.WriteString("x")
		}, rhttp.ErrBodyNotAllowed, "ResponseWriter.WriteString: "},
		{"write after finish", func(w *rhttp.ResponseWriter) {
			w.Finish()
			w.WriteString("late")
		}, rhttp.ErrFinished, "ResponseWriter.WriteString: "},
		{"reserved header", func(w *rhttp.ResponseWriter) { w.Set("Transfer-Encoding", "gzip") }, rhttp.ErrReservedHeader, "ResponseWriter.Set: "},
		{"bad status", func(w *rhttp.ResponseWriter) { w.SetStatus(99) }, rhttp.ErrInvalidStatus, "ResponseWriter.SetStatus: "},
		{"101", func(w *rhttp.ResponseWriter) { w.WriteInformational(101) }, rhttp.ErrInvalidStatus, "ResponseWriter.WriteInformational: "},
		{"negative length", func(w *rhttp.ResponseWriter) { w.SetContentLength(-1) }, rhttp.ErrInvalidContentLength, "ResponseWriter.SetContentLength: "},
		{"del after commit", func(w *rhttp.ResponseWriter) {
			w.Flush()
			w.Del("X")
		}, rhttp.ErrHeadersSent, "ResponseWriter.Del: "},
		{"sendfile outside a server", func(w *rhttp.ResponseWriter) { w.SendFile(nil, 0, 0) }, rhttp.ErrInvalidArgument, "ResponseWriter.SendFile: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, req := begin(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			tc.misuse(w)
			w.Finish()
			err := w.Err()
			var we *rhttp.WriterError
			if !errors.Is(err, tc.want) || !errors.As(err, &we) || !contains(err.Error(), tc.msg) {
				t.Fatalf("Err() = %v, want %v with %q", err, tc.want, tc.msg)
			}
			w.Begin(nil, req)
			if err := w.Err(); err != nil {
				t.Fatalf("Err() after Begin = %v", err)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestWriterErrCleanResponse: a correct response (including a handler that finishes itself
// before the server's own Finish) leaves Err nil.
func TestWriterErrCleanResponse(t *testing.T) {
	w, _ := begin(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	w.Set("Content-Type", "text/plain")
	w.WriteString("hello")
	w.Flush()
	w.WriteString(" world")
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	w.Finish() // what the server does after the handler returns
	if err := w.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
}

// TestWriteFromStackBufferDoesNotAllocate: a body or header value built in a stack array (the
// way to format numbers without allocating) must not escape through Write or SetBytes. This is
// a test from another package on purpose: the escape happened only where Write was inlined
// into the caller.
func TestWriteFromStackBufferDoesNotAllocate(t *testing.T) {
	w, req := begin(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	out := make([]byte, 0, 4096)
	n := 0
	run := func() {
		w.Begin(out[:0], req)
		var buf [32]byte
		n++
		w.SetBytes("X-Count", strconv.AppendInt(buf[:0], int64(n), 10))
		var body [32]byte
		w.Write(strconv.AppendInt(body[:0], int64(n)*7, 10))
		w.Finish()
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per response", a)
	}
}
