package http_test

import (
	"fmt"
	"io"
	"log"
	"net"
	nethttp "net/http"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// ExampleClient_Do calls an upstream from an event loop: the request goes out on one of the
// loop's pooled keep-alive connections and the callback runs on the same loop goroutine, with
// the whole response (its views are valid during the callback only).
func ExampleClient_Do() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	upstream := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "hello from upstream "+r.URL.Path)
	})}
	go upstream.Serve(ln)
	defer upstream.Close()

	loops, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	if err := loops.Start(); err != nil {
		log.Fatal(err)
	}
	defer loops.Close()
	client, err := rhttp.NewClient("tcp", ln.Addr().String(), rhttp.ClientConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	done := make(chan struct{})
	l := loops.Loops()[0]
	// Do runs on the loop's goroutine: inside a handler, a timer or, as here, a posted function.
	l.Post(func() {
		err := client.Do(l, &rhttp.ClientRequest{Target: "/a"}, func(r *rhttp.ClientResponse, err error) {
			if err != nil {
				fmt.Println("failed:", err, rhttp.GatewayStatus(err))
			} else {
				fmt.Println(r.Status(), string(r.Body))
			}
			close(done)
		})
		if err != nil {
			fmt.Println(err)
			close(done)
		}
	})
	<-done
	// Output:
	// 200 hello from upstream /a
}
