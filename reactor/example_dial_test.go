package reactor_test

import (
	"fmt"
	"log"
	"net"

	"github.com/reactord/reactord/reactor"
)

// ExampleLoop_Dial opens a connection from a loop to another server (here a Go echo
// listener) and serves it with a handler of its own: OnOpen once connected, OnData with the
// answer, OnClose at the end — all on the loop goroutine, next to the connections it accepts.
func ExampleLoop_Dial() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() { // the other server: echoes one message
		c, err := ln.Accept()
		if err == nil {
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			c.Write(buf[:n])
			c.Read(buf) // until the client closes
			c.Close()
		}
	}()

	srv, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1)) // no listener needed
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	done := make(chan struct{})
	client := reactor.HandlerFuncs{
		Open: func(c *reactor.Conn) { c.Write([]byte("ping")) },
		Data: func(c *reactor.Conn, in []byte) int {
			fmt.Printf("got %q\n", in)
			c.Close()
			return len(in)
		},
		Close: func(c *reactor.Conn, err error) {
			fmt.Println("closed:", err) // nil after our Close; the dial's error if it failed
			close(done)
		},
	}
	// Server.Dial picks the loop with the fewest connections; Loop.Dial names one.
	if _, err := srv.Dial("tcp", ln.Addr().String(), client); err != nil {
		log.Fatal(err)
	}
	<-done
	// Output:
	// got "ping"
	// closed: <nil>
}
