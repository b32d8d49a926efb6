package reactor_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/reactord/reactord/reactor"
)

// ExampleNewServer runs a TCP echo server on one loop, sends it a line, and shuts it down.
func ExampleNewServer() {
	echo := reactor.HandlerFuncs{
		// in is only valid during the call: Write copies it into the connection's output.
		Data: func(c *reactor.Conn, in []byte) int {
			c.Write(in)
			return len(in) // consumed everything
		},
	}
	srv, err := reactor.NewServer(echo, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0") // port 0: the kernel picks a free one
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(conn, "hello, reactor\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line)
	conn.Close()

	// Shutdown stops accepting, lets in-flight output drain and closes idle connections.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// hello, reactor
}

// startLoop starts a server without listeners, only to have a running loop.
func startLoop() (*reactor.Server, *reactor.Loop) {
	srv, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	return srv, srv.Loops()[0]
}

// ExampleLoop_AfterFunc schedules a one-shot timer. Timers belong to the loop goroutine:
// from elsewhere, Post a function that creates them.
func ExampleLoop_AfterFunc() {
	srv, l := startLoop()
	defer srv.Close()

	done := make(chan struct{})
	err := l.Post(func() {
		l.AfterFunc(10*time.Millisecond, func() {
			fmt.Println("fired on loop", l.Index())
			close(done)
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	<-done
	// Output:
	// fired on loop 0
}

// ExampleLoop_Every runs a periodic timer three times; the callback stops its own timer.
func ExampleLoop_Every() {
	srv, l := startLoop()
	defer srv.Close()

	done := make(chan struct{})
	err := l.Post(func() {
		// t and n are touched only on the loop goroutine: no locks needed.
		var t *reactor.Timer
		n := 0
		t = l.Every(5*time.Millisecond, func() {
			n++
			fmt.Println("tick", n)
			if n == 3 {
				t.Stop()
				close(done)
			}
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	<-done
	// Output:
	// tick 1
	// tick 2
	// tick 3
}

// ExampleConn_AsyncWrite hands each request to a worker goroutine, which may block, and sends
// the answer back with AsyncWrite, one of the methods that are safe off the loop. OnData
// copies the request: in is only valid during the call.
func ExampleConn_AsyncWrite() {
	type job struct {
		c   *reactor.Conn
		req string
	}
	jobs := make(chan job, 64)
	var workers sync.WaitGroup
	workers.Add(1)
	go func() {
		defer workers.Done()
		for j := range jobs {
			answer := strings.ToUpper(j.req) // stands for slow, blocking work
			j.c.AsyncWrite([]byte(answer + "\n"))
			j.c.Loop().Post(j.c.Release) // the work is done: no longer busy
		}
	}()

	h := reactor.HandlerFuncs{Data: func(c *reactor.Conn, in []byte) int {
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			return 0 // no whole line yet: keep it
		}
		select {
		case jobs <- job{c, string(in[:i])}: // string() copies
			// Busy until the worker is done: no idle timeout, Shutdown waits, and a client
			// that shuts its writing side still gets the answer.
			c.Hold()
		default:
			c.Write([]byte("busy\n")) // never block the loop on a full queue
		}
		return i + 1
	}}
	srv, err := reactor.NewServer(h, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(conn, "offloaded\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line)
	conn.Close()

	// Stop the server first: once it has stopped, no OnData can send to jobs, and closing
	// the queue ends the worker. (AsyncWrite to a closed connection just returns an error.)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	close(jobs)
	workers.Wait()
	// Output:
	// OFFLOADED
}

// ExampleLoop_Post reads loop-owned state from another goroutine. The counter is touched
// only on the loop goroutine, so it needs no lock; Post is the way in.
// ExampleConn_AsyncWriteContext streams from a goroutine without buffering more than the
// client takes: AsyncWriteContext waits while the connection's output is above the high-water
// mark.
func ExampleConn_AsyncWriteContext() {
	const total = 8 << 20 // far more than the 1 MiB high-water mark
	h := reactor.HandlerFuncs{Open: func(c *reactor.Conn) {
		c.Hold() // the producer owes this connection its stream
		go func() {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for sent := 0; sent < total; sent += len(chunk) {
				if err := c.AsyncWriteContext(context.Background(), chunk); err != nil {
					return // the client went away
				}
			}
			c.Loop().Post(c.Release)
			c.Close() // after the stream: pending output is flushed first
		}()
	}}
	srv, err := reactor.NewServer(h, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	n, err := io.Copy(io.Discard, conn)
	fmt.Println(n == total, err)
	// Output:
	// true <nil>
}

func ExampleLoop_Post() {
	opened := 0 // owned by the server's single loop
	h := reactor.HandlerFuncs{Open: func(c *reactor.Conn) {
		opened++
		c.Write([]byte("welcome\n"))
	}}
	srv, err := reactor.NewServer(h, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	for range 2 {
		conn, err := net.Dial("tcp", addr.String())
		if err != nil {
			log.Fatal(err)
		}
		// The greeting proves OnOpen has run.
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
			log.Fatal(err)
		}
		conn.Close()
	}

	count := make(chan int)
	if err := srv.Loops()[0].Post(func() { count <- opened }); err != nil {
		log.Fatal(err)
	}
	fmt.Println("connections opened:", <-count)
	// Output:
	// connections opened: 2
}

// ExampleConn_SetIdleTimeout closes connections that stay silent, and reports why in OnClose.
func ExampleConn_SetIdleTimeout() {
	closed := make(chan error, 1)
	h := reactor.HandlerFuncs{
		Open:  func(c *reactor.Conn) { c.SetIdleTimeout(20 * time.Millisecond) },
		Close: func(c *reactor.Conn, err error) { closed <- err },
	}
	srv, err := reactor.NewServer(h, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	// Send nothing; the server closes the connection, and the client reads EOF.
	_, err = conn.Read(make([]byte, 1))
	fmt.Println("client:", err == io.EOF)
	fmt.Println("server:", <-closed)
	// Output:
	// client: true
	// server: reactor: idle timeout
}

// ExampleServer_ListenPacket answers UDP datagrams on the loop.
func ExampleServer_ListenPacket() {
	srv, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1))
	if err != nil {
		log.Fatal(err)
	}
	pong := reactor.PacketHandlerFunc(func(pc *reactor.PacketConn, data []byte, from net.Addr) {
		// data is only valid during the call; from may be kept.
		if string(data) == "ping" {
			pc.WriteTo([]byte("pong"), from)
		}
	})
	addr, err := srv.ListenPacket("udp", "127.0.0.1:0", pong)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	conn, err := net.Dial("udp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf[:n]))
	// Output:
	// pong
}
