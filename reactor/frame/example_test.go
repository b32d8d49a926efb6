package frame_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/reactord/reactord/reactor"
	"github.com/reactord/reactord/reactor/frame"
)

// ExampleNewHandler serves a line protocol: each line is answered with its length, pipelined
// lines are answered in order, and a line over 16 bytes ends the connection with an error reply.
func ExampleNewHandler() {
	h, err := frame.NewHandler(frame.Lines{Max: 16}, frame.Funcs{
		Frame: func(c *reactor.Conn, line []byte) error {
			fmt.Fprintf(c, "%d\n", len(line)) // line is only valid during the call
			return nil
		},
		Error: func(c *reactor.Conn, err error) {
			fmt.Fprintf(c, "error: %v\n", err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := reactor.NewServer(h, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	// Three lines in one write, the third far too long.
	fmt.Fprintf(conn, "hello\r\nreactor\n%s\n", bytes.Repeat([]byte("x"), 100))
	sc := bufio.NewScanner(conn)
	for sc.Scan() { // until the server closes
		fmt.Println(sc.Text())
	}
	conn.Close()
	cancel()
	<-done
	// Output:
	// 5
	// 7
	// error: frame: message too long: line longer than 16 bytes
}

// ExampleLengthPrefixed shows a Framer on its own: Next finds the first frame of the input
// and says how many bytes it took, or 0 while it is incomplete.
func ExampleLengthPrefixed() {
	f := frame.LengthPrefixed{Size: 2, Max: 1024}
	in := []byte("\x00\x05hello\x00\x03ab") // one frame and the start of the next
	for {
		payload, n, err := f.Next(in)
		if err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			fmt.Printf("incomplete: %d bytes kept\n", len(in))
			break
		}
		fmt.Printf("frame %q (%d bytes on the wire)\n", payload, n)
		in = in[n:]
	}
	// Output:
	// frame "hello" (7 bytes on the wire)
	// incomplete: 4 bytes kept
}
