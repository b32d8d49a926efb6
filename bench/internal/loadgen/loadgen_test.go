package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reactord/reactord/internal/testsupport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer answers each request (counted by its blank line) with reply(i), the i-th
// response of the connection, or closes when reply returns "".
func testServer(t *testing.T, reply func(i int) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for i := 0; ; i++ {
					for {
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if bytes.Equal(line, []byte("\r\n")) {
							break
						}
					}
					s := reply(i)
					if s == "" {
						return
					}
					if _, err := c.Write([]byte(s)); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestRunCountsRequestsAndErrors runs the generator against servers that answer well and
// badly. Each case's check says whether a window shows what the case is about (and fails the
// test at once on a result that is wrong whatever the window): a window in which too little
// happened, because a busy machine stalled the test for most of it, proves nothing and is
// run again, up to a scaled deadline.
func TestRunCountsRequestsAndErrors(t *testing.T) {
	tests := []struct {
		name     string
		reply    func(i int) string
		expect   []byte
		pipeline int // 0: 3
		check    func(t *testing.T, r *Result) (shown bool)
	}{
		{name: "ok", reply: func(int) string { return hello }, expect: []byte("Hello, World!"),
			check: func(t *testing.T, r *Result) bool {
				if r.Errors.Total() != 0 || r.Requests > 0 && (r.P50 <= 0 || r.P99 < r.P50 || r.RPS <= 0) {
					t.Fatalf("result %+v", r)
				}
				return r.Requests > 0
			}},
		{name: "bad status", reply: func(int) string { return "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n" },
			check: func(t *testing.T, r *Result) bool { return r.Errors.Status > 0 }},
		{name: "wrong body", reply: func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno" }, expect: []byte("Hello, World!"),
			check: func(t *testing.T, r *Result) bool { return r.Errors.Body > 0 }},
		{name: "invalid", reply: func(int) string { return "HTTP/1.1 200 OK\r\n\r\n" },
			check: func(t *testing.T, r *Result) bool { return r.Errors.Invalid > 0 }},
		{name: "short", reply: func(i int) string {
			if i == 3 {
				return ""
			}
			return hello
		}, check: func(t *testing.T, r *Result) bool { return r.Errors.Short > 0 && r.Requests > 0 }},
		{name: "polite close", reply: func(int) string {
			return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 13\r\n\r\nHello, World!"
		}, pipeline: 1, check: func(t *testing.T, r *Result) bool {
			if r.Errors.Total() != 0 {
				t.Fatalf("result %+v", r)
			}
			return r.Errors.Reconnects > 0 && r.Requests > 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := testServer(t, tt.reply)
			p := tt.pipeline
			if p == 0 {
				p = 3
			}
			giveUp := testsupport.Deadline(20 * time.Second)
			for {
				var starts, ends int
				r, err := Run(context.Background(), Config{Addr: addr, Conns: 4, Pipeline: p, Warmup: 20 * time.Millisecond,
					Duration: 150 * time.Millisecond, ExpectBody: tt.expect, Timeout: testsupport.Scale(2 * time.Second),
					MeasureStart: func() { starts++ }, MeasureEnd: func() { ends++ }})
				if err != nil {
					t.Fatal(err)
				}
				if starts != 1 || ends != 1 {
					t.Fatalf("hooks called %d/%d times", starts, ends)
				}
				if tt.check(t, r) {
					return
				}
				if time.Now().After(giveUp) {
					t.Fatalf("no window showed it; the last: %+v", r)
				}
				t.Logf("a window that shows nothing (a stalled machine?): %+v; again", r)
			}
		})
	}
}

func TestRunConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	r, err := Run(context.Background(), Config{Addr: addr, Conns: 2, Pipeline: 1, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors.Conn == 0 {
		t.Fatalf("result %+v", r)
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Addr: "x:1", Conns: 0, Pipeline: 1, Duration: time.Second},
		{Addr: "x:1", Conns: 1, Pipeline: 0, Duration: time.Second},
		{Addr: "x:1", Conns: 1, Pipeline: 1, Duration: 0},
		{Addr: "", Conns: 1, Pipeline: 1, Duration: time.Second},
		{Addr: "x:1", Conns: 1, Pipeline: 2000, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: err %v, want ErrBadConfig", c, err)
		}
	}
}

func TestRunContextCancel(t *testing.T) {
	addr := testServer(t, func(int) string { return hello })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, Config{Addr: addr, Conns: 1, Pipeline: 1, Duration: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}
