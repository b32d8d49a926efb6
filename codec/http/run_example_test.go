package http_test

import (
	"context"
	"fmt"
	"io"
	"log"
	nethttp "net/http"
	"time"

	rhttp "github.com/reactord/reactord/codec/http"
)

// ExampleServer_Run is the whole life of an HTTP server: serve until the context is done,
// then let requests in flight finish for up to 5 seconds. A program takes the context from
// signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM).
func ExampleServer_Run() {
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		w.WriteString("hello\n")
	}))
	if err != nil {
		log.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, 5*time.Second) }()

	resp, err := nethttp.Get("http://" + addr.String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))

	cancel() // what SIGTERM does in a real program
	fmt.Println("Run returned", <-done)
	// Output:
	// hello
	// Run returned <nil>
}
