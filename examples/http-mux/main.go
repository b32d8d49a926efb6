// Command http-mux runs an ordinary net/http ServeMux, unchanged, on the reactor through the
// codec's adapter (rhttp.Adapt). The loop parses requests; the handlers run on a bounded
// worker pool, so they may block — on a database, a sleep, a channel — without stalling the
// loop, and responses still go out in request order.
//
//	go run ./examples/http-mux
//	curl http://127.0.0.1:9000/
//	curl 'http://127.0.0.1:9000/slow?d=5s' &   # blocks one worker for 5s...
//	curl http://127.0.0.1:9000/fast            # ...while this answers at once
//	curl -d 'some body' http://127.0.0.1:9000/echo
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	rhttp "github.com/reactord/reactord/codec/http"
)

// newMux is plain net/http: nothing in it knows about the reactor.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello from net/http on the reactor!")
	})
	mux.HandleFunc("GET /fast", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "fast")
	})
	// /slow blocks its worker for ?d= (default 1s, at most 1m), or until the client goes
	// away: r.Context() is cancelled when the connection closes.
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		d := time.Second
		if q := r.URL.Query().Get("d"); q != "" {
			var err error
			if d, err = time.ParseDuration(q); err != nil || d < 0 || d > time.Minute {
				http.Error(w, "d: want a duration up to 1m", http.StatusBadRequest)
				return
			}
		}
		fmt.Printf("slow: blocking a worker for %v\n", d)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprintf(w, "slept %v\n", d)
		case <-r.Context().Done():
			fmt.Printf("slow: client gone, giving the worker back (%v)\n", context.Cause(r.Context()))
		}
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "TCP address to listen on (port 0 picks a free port)")
	workers := flag.Int("workers", rhttp.DefaultWorkers(), "size of the worker pool that runs the handlers")
	flag.Parse()
	if err := run(*addr, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "http-mux:", err)
		os.Exit(1)
	}
}

func run(addr string, workers int) error {
	// Catch the signals before anything else: one arriving before this would kill the
	// process instead of shutting it down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer log.Sync()
	srv, err := rhttp.NewServer(rhttp.Adapt(newMux()),
		rhttp.WithWorkers(workers),
		rhttp.WithLogger(log),
	)
	if err != nil {
		return err
	}
	bound, err := srv.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s (%d workers)\n", bound, srv.Stats().Workers)
	// Serve until SIGINT or SIGTERM, then let requests running on workers finish (10 s at
	// most; after that their contexts are cancelled and the connections closed).
	if err := srv.Run(ctx, 10*time.Second); err != nil {
		return err
	}
	fmt.Printf("served %d requests\n", srv.Stats().Requests)
	return nil
}
