package http

import (
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

func adapterMux(t testing.TB) *nethttp.ServeMux {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/info", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-Query", r.URL.Query().Get("q"))
		w.Header().Set("X-Remote-Set", fmt.Sprint(r.RemoteAddr != ""))
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Agent", r.Header.Get("User-Agent"))
		w.Header().Set("X-Trailer", r.Trailer.Get("Check"))
		w.WriteHeader(nethttp.StatusCreated)
		fmt.Fprintf(w, "body=%s", b)
	})
	mux.HandleFunc("/html", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "<html><body>hi</body></html>")
	})
	mux.HandleFunc("/panic", func(w nethttp.ResponseWriter, r *nethttp.Request) { panic("boom") })
	mux.HandleFunc("/bad-header", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("X-Evil", "a\r\nSet-Cookie: x=1")
		w.Header().Set("X-Good", "fine")
		io.WriteString(w, "ok")
	})
	return mux
}

func TestAdapterBasics(t *testing.T) {
	_, addr := startServer(t, Adapt(adapterMux(t)), WithWorkers(4))
	cl := dialClient(t, addr)
	cl.send("POST /info?q=v HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ua\r\nContent-Length: 4\r\n\r\nabcd")
	resp, body := cl.read("POST")
	h := resp.Header
	if resp.StatusCode != 201 || body != "body=abcd" || h.Get("X-Method") != "POST" || h.Get("X-Host") != "example.com" ||
		h.Get("X-Query") != "v" || h.Get("X-Remote-Set") != "true" || h.Get("X-Proto") != "HTTP/1.1" || h.Get("X-Agent") != "ua" {
		t.Fatalf("got %d %q %v", resp.StatusCode, body, h)
	}
	cl.send("POST /info HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\nCheck: 7\r\n\r\n")
	resp, body = cl.read("POST")
	if body != "body=xy" || resp.Header.Get("X-Trailer") != "7" {
		t.Fatalf("chunked: %q %v", body, resp.Header)
	}
	cl.send("GET /html HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, _ = cl.read("GET")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("sniffed Content-Type %q", ct)
	}
	cl.send("HEAD /html HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := cl.read("HEAD"); body != "" || resp.ContentLength != int64(len("<html><body>hi</body></html>")) {
		t.Fatalf("HEAD: cl %d body %q", resp.ContentLength, body)
	}
	cl.send("GET /bad-header HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := cl.read("GET"); body != "ok" || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("X-Good") != "fine" {
		t.Fatalf("header injection: %v %q", resp.Header, body)
	}
	cl.send("GET /missing HTTP/1.0\r\n\r\n")
	if resp, _ := cl.read("GET"); resp.StatusCode != 404 || !cl.closed() {
		t.Fatalf("HTTP/1.0 404: %d", resp.StatusCode)
	}
}

func TestAdapterPanic(t *testing.T) {
	_, addr := startServer(t, Adapt(adapterMux(t)))
	cl := dialClient(t, addr)
	cl.send("GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := cl.read("GET"); resp.StatusCode != 500 || !cl.closed() {
		t.Fatalf("got %d, want 500 and close", resp.StatusCode)
	}
}

// TestAdapterBlockingHandler: a handler blocked on one connection does not delay others.
func TestAdapterBlockingHandler(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/block", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		close(entered)
		<-release
		io.WriteString(w, "unblocked")
	})
	mux.HandleFunc("/fast", func(w nethttp.ResponseWriter, r *nethttp.Request) { io.WriteString(w, "fast") })
	_, addr := startServer(t, Adapt(mux), WithWorkers(4), WithReactorOptions(reactor.WithLoops(1)))
	blocked := dialClient(t, addr)
	blocked.send("GET /block HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	// Other connections on the same (single) loop are answered while /block still waits.
	for i := 0; i < 20; i++ {
		cl := dialClient(t, addr)
		cl.send("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, body := cl.read("GET"); body != "fast" {
			t.Fatalf("fast: %q", body)
		}
	}
	close(release)
	if _, body := blocked.read("GET"); body != "unblocked" {
		t.Fatalf("blocked: %q", body)
	}
}

// TestAdapterOutOfOrderCompletion: pipelined requests that finish in reverse order are still
// answered in request order.
func TestAdapterOutOfOrderCompletion(t *testing.T) {
	const n = 8
	var mu sync.Mutex
	var finished []int
	gates := make([]chan struct{}, n)
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/{i}", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		var i int
		fmt.Sscan(r.PathValue("i"), &i)
		if i < n-1 {
			<-gates[i] // request i waits for request i+1 to finish
		}
		fmt.Fprintf(w, "r%d", i)
		mu.Lock()
		finished = append(finished, i)
		mu.Unlock()
		if i > 0 {
			close(gates[i-1])
		}
	})
	_, addr := startServer(t, Adapt(mux), WithWorkers(n))
	cl := dialClient(t, addr)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
	}
	cl.send(sb.String())
	for i := 0; i < n; i++ {
		if _, body := cl.read("GET"); body != fmt.Sprintf("r%d", i) {
			t.Fatalf("response %d: %q", i, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if finished[0] != n-1 {
		t.Fatalf("handlers finished in order %v: the test did not reorder them", finished)
	}
}

// TestAdapterUnsafeMethodBarrier: a pipelined POST runs alone: the GET after it starts only
// once the POST has been answered.
//
// The POST's handler blocks until the test has looked at the server: with the GET read and
// the loop past the pass that read it, the GET must be neither queued for a worker nor
// running, nor have run. (A server without the barrier hands it to one of the three idle
// workers as soon as it parses it.)
func TestAdapterUnsafeMethodBarrier(t *testing.T) {
	var mu sync.Mutex
	var events []string
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	seen := func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(events, ",") }
	postRunning, release := make(chan struct{}), make(chan struct{})
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		note("start " + r.Method)
		if r.Method == "POST" {
			close(postRunning)
			<-release
		}
		note("end " + r.Method)
		io.WriteString(w, r.Method)
	})
	srv, addr := startServer(t, Adapt(mux), WithWorkers(4), WithReactorOptions(reactor.WithLoops(1)))
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock() // a failed check must not leave the POST blocking the server's shutdown
	cl := dialClient(t, addr)
	reqs := "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
	cl.send(reqs)
	if _, body := cl.read("GET"); body != "GET" {
		t.Fatalf("first response %q, want GET", body)
	}
	select {
	case <-postRunning:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatalf("the POST never started; events %s", seen())
	}
	// The loop has all three requests (one write, read whole)...
	testsupport.Eventually(t, 0, "the server to read the three requests", func() bool {
		return srv.Stats().BytesIn == uint64(len(reqs))
	})
	// ...and has finished the pass that dispatched the POST and parsed the GET after it: a
	// task posted now runs after that pass.
	passed := make(chan struct{})
	if err := srv.Reactor().Loops()[0].Post(func() { close(passed) }); err != nil {
		t.Fatal(err)
	}
	<-passed
	// The first GET's worker may still be on its way out. Once only the POST is left, a GET
	// that had been handed to the pool has either run or is still counted as queued/running.
	testsupport.Eventually(t, 0, "the pool to hold only the POST", func() bool {
		st := srv.Stats()
		return st.Queued == 0 && st.Running == 1
	})
	if got := seen(); got != "start GET,end GET,start POST" {
		t.Fatalf("while the POST runs, events %s: a request after it started", got)
	}
	unblock()
	for _, want := range []string{"POST", "GET"} {
		if _, body := cl.read("GET"); body != want {
			t.Fatalf("got %q want %q", body, want)
		}
	}
	if got := seen(); got != "start GET,end GET,start POST,end POST,start GET,end GET" {
		t.Fatalf("events %s", got)
	}
}

func TestAdapterContextCancelledOnDisconnect(t *testing.T) {
	entered := make(chan struct{})
	cancelled := make(chan error, 1)
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(testsupport.Scale(20 * time.Second)):
			cancelled <- errors.New("context not cancelled")
		}
		// The EOF may be a half-close, so the write is still attempted (nil) unless the
		// connection is already gone (ErrClientGone); either way it must not block or panic.
		_, err := io.WriteString(w, "too late")
		if err != nil && !errors.Is(err, ErrClientGone) {
			t.Errorf("write after disconnect: %v", err)
		}
	})
	srv, addr := startServer(t, Adapt(mux))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	cl.c.Close()
	if err := <-cancelled; !errors.Is(err, errCanceled) {
		t.Fatalf("context: %v", err)
	}
	testsupport.Eventually(t, 0, "server closes the connection", func() bool { return srv.Stats().ConnsOpen == 0 })
}

func TestAdapterStreamingFlush(t *testing.T) {
	got := make(chan struct{})
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "first;")
		w.(nethttp.Flusher).Flush()
		<-got // the client has the first chunk while the handler is still running
		io.WriteString(w, "second")
	})
	_, addr := startServer(t, Adapt(mux))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := nethttp.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("TE %v", resp.TransferEncoding)
	}
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first;" {
		t.Fatalf("first chunk %q %v", first, err)
	}
	close(got)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second" {
		t.Fatalf("rest %q", rest)
	}
}

func TestAdapterPipelinedInOrder(t *testing.T) {
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, r.URL.Path)
	})), WithWorkers(8), WithMaxPipeline(4))
	cl := dialClient(t, addr)
	var sb strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&sb, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
	}
	go io.WriteString(cl.c, sb.String())
	for i := 0; i < 300; i++ {
		if _, body := cl.read("GET"); body != fmt.Sprintf("/%d", i) {
			t.Fatalf("response %d: %q", i, body)
		}
	}
}

func TestAdapterShutdownGraceful(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})
	s, addr := startServer(t, Adapt(mux))
	idle := dialClient(t, addr)
	busy := dialClient(t, addr)
	testsupport.Eventually(t, 0, "connections", func() bool { return s.Stats().ConnsOpen == 2 })
	busy.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(testsupport.Scale(10 * time.Second))
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	if !idle.closed() {
		t.Fatal("idle connection not closed")
	}
	close(release)
	resp, body := busy.read("GET")
	if body != "finished" || !resp.Close || !busy.closed() {
		t.Fatalf("in-flight response %q close=%v", body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestAdapterHandleSync: a native handler may delegate to an adapted handler synchronously.
func TestAdapterHandleSync(t *testing.T) {
	ad := Adapt(adapterMux(t))
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		if string(r.Path()) == "/native" {
			w.WriteString("native")
			return
		}
		ad.Handle(w, r)
	}))
	cl := dialClient(t, addr)
	cl.send("GET /native HTTP/1.1\r\nHost: a\r\n\r\nPOST /info?q=z HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok")
	if _, body := cl.read("GET"); body != "native" {
		t.Fatalf("native %q", body)
	}
	resp, body := cl.read("POST")
	if resp.StatusCode != 201 || body != "body=ok" || resp.Header.Get("X-Query") != "z" || resp.Header.Get("X-Remote-Set") != "true" {
		t.Fatalf("delegated: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// TestAdapterHalfCloseStillAnswered: a client that shuts its writing side right after sending
// (curl, load balancers) still gets the response of a request that is on the worker pool when
// the EOF arrives, and then sees the connection close.
func TestAdapterHalfCloseStillAnswered(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/slow", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		close(entered)
		<-release
		io.WriteString(w, "late but complete")
	})
	srv, addr := startServer(t, Adapt(mux), WithReactorOptions(reactor.WithLoops(1)))
	cl := dialClient(t, addr)
	cl.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	events := func() (n uint64) {
		for _, l := range srv.Reactor().Stats().Loops {
			n += l.Events
		}
		return n
	}
	before := events()
	if err := cl.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// Release the handler only once the loop has handled the EOF: the connection is the only
	// fd of the single loop with traffic, so the next readiness event is the EOF.
	testsupport.Eventually(t, 0, "EOF read by the loop", func() bool { return events() > before })
	close(release)
	resp, body := cl.read("GET")
	if resp.StatusCode != 200 || body != "late but complete" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if !cl.closed() {
		t.Fatal("connection not closed after the last response")
	}
}
