// Command http-hello serves HTTP/1.1 with the codec's native handler API: the handler runs on
// the event loop, reads the request through views into the connection's input buffer, and
// appends the response straight to the connection's output. Nothing is allocated per request.
//
//	go run ./examples/http-hello
//	curl http://127.0.0.1:9000/
//	curl 'http://127.0.0.1:9000/hello?name=gopher'
//	curl -H 'User-Agent: demo' http://127.0.0.1:9000/agent
//
// The handler must not block: a blocked handler stalls every connection of its loop. For
// handlers that block, see the http-mux example.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

var hello = []byte("Hello, World!\n")

// handle is the whole application. w and r are valid only during the call: every []byte r
// returns points into the connection's input buffer, and is copied by Write if it is to be
// part of the response.
func handle(w *rhttp.ResponseWriter, r *rhttp.Request) {
	// A string conversion in a switch or comparison does not allocate.
	switch string(r.Path()) {
	case "/":
		w.Set("Content-Type", "text/plain; charset=utf-8")
		// A length set before the first Write sends the body straight into the output
		// buffer, without an intermediate copy.
		w.SetContentLength(int64(len(hello)))
		w.Write(hello)
	case "/hello":
		name := queryValue(r.Query(), "name")
		if len(name) == 0 {
			name = []byte("stranger")
		}
		w.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteString("Hello, ")
		w.Write(name) // a view into the request: copied into the response here
		w.WriteString("!\n")
	case "/agent":
		ua, _ := r.Header("User-Agent")
		w.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteString("Your User-Agent: ")
		w.Write(ua)
		w.WriteString("\n")
	default:
		w.SetStatus(404)
		w.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteString("not found\n")
	}
	// Finish is called for us when the handler returns.
}

// queryValue returns the raw value of key in query ("a=1&b=2"), or nil. It returns a view
// into query: valid only while the request is. (No percent-decoding: this is a demo.)
func queryValue(query []byte, key string) []byte {
	for len(query) > 0 {
		var pair []byte
		pair, query = cut(query, '&')
		k, v := cut(pair, '=')
		if string(k) == key {
			return v
		}
	}
	return nil
}

func cut(b []byte, sep byte) (before, after []byte) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "TCP address to listen on (port 0 picks a free port)")
	loops := flag.Int("loops", 0, "number of event loops (0 = GOMAXPROCS)")
	flag.Parse()
	if err := run(*addr, *loops); err != nil {
		fmt.Fprintln(os.Stderr, "http-hello:", err)
		os.Exit(1)
	}
}

func run(addr string, loops int) error {
	// Catch the signals before anything else: one arriving before this would kill the
	// process instead of shutting it down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer log.Sync()
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(handle),
		rhttp.WithServerName("http-hello"),
		rhttp.WithIdleTimeout(30*time.Second),
		rhttp.WithLogger(log),
		rhttp.WithReactorOptions(reactor.WithLoops(loops)),
	)
	if err != nil {
		return err
	}
	bound, err := srv.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s (try: curl http://%s/)\n", bound, bound)
	// Serve until SIGINT or SIGTERM, then let requests in flight finish (5 s at most).
	if err := srv.Run(ctx, 5*time.Second); err != nil {
		return err
	}
	fmt.Printf("served %d requests\n", srv.Stats().Requests)
	return nil
}
