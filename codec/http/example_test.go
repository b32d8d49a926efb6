package http_test

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"time"

	rhttp "github.com/reactord/reactord/codec/http"
)

// get fetches url with a client of its own and returns the body.
func get(url string) string {
	tr := &nethttp.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&nethttp.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b)
}

// A native handler runs on the event loop and writes straight into the connection's output.
func ExampleNewServer() {
	h := rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		w.Set("Content-Type", "text/plain")
		w.WriteString("Hello, ")
		w.Write(r.Path()[1:]) // r's views are valid only during the call
	})
	s, err := rhttp.NewServer(h, rhttp.WithIdleTimeout(30*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	addr, _ := s.Listen("tcp", "127.0.0.1:0")
	if err := s.Start(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(get("http://" + addr.String() + "/World"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(s.Shutdown(ctx))
	// Output:
	// 200 OK Hello, World
	// <nil>
}

// Any net/http handler runs unchanged on the worker pool behind the loops.
func ExampleAdapt() {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("GET /greet/{name}", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		fmt.Fprintf(w, "Hello, %s", r.PathValue("name"))
	})
	s, err := rhttp.NewServer(rhttp.Adapt(mux), rhttp.WithWorkers(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	addr, _ := s.Listen("tcp", "127.0.0.1:0")
	if err := s.Start(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(get("http://" + addr.String() + "/greet/gopher"))
	fmt.Println(get("http://" + addr.String() + "/nowhere"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(s.Shutdown(ctx))
	// Output:
	// 200 OK Hello, gopher
	// 404 Not Found 404 page not found
	//
	// <nil>
}
