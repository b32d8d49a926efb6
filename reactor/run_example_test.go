package reactor_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/reactord/reactord/reactor"
)

// ExampleServer_Run serves until a context is done, then drains. A program takes the context
// from signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM); here the example cancels it
// itself after one exchange.
func ExampleServer_Run() {
	srv, err := reactor.NewServer(reactor.HandlerFuncs{Data: func(c *reactor.Conn, in []byte) int {
		c.Write(in)
		return len(in)
	}}, reactor.WithLoops(1))
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

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(conn, "ping\n")
	line, _ := bufio.NewReader(conn).ReadString('\n')
	fmt.Print(line)
	conn.Close()

	cancel()                            // what SIGTERM does in a real program
	fmt.Println("Run returned", <-done) // nil: every connection finished within the drain
	// Output:
	// ping
	// Run returned <nil>
}
