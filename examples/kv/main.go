// Command kv is a Redis-like key-value server on the reactor speaking an inline line
// protocol: PING, SET key value, GET key, DEL key..., QUIT, one command per line ("\n" or
// "\r\n"), replies in Redis's format (+OK, $len, :n, -ERR). Pipelined commands are answered
// in order; a line over 4 KiB gets "-ERR" and the connection is closed.
//
//	go run ./examples/kv
//	printf 'SET greeting hello\r\nGET greeting\r\nPING\r\n' | nc -q1 127.0.0.1 6380
//
// frame.Lines does the line splitting, the length limit and the backpressure; Run does the
// start and the graceful shutdown. examples/before/kv is the same server without them.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/reactord/reactord/reactor"
	"github.com/reactord/reactord/reactor/frame"
)

const maxLine = 4096

// store is shared by every loop: a short critical section per command is fine on the loop.
type store struct {
	mu sync.Mutex
	m  map[string]string
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6380", "TCP address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "kv:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &store{m: make(map[string]string)}
	h, err := frame.NewHandler(frame.Lines{Max: maxLine}, frame.Funcs{Frame: s.command, Error: replyError})
	if err != nil {
		return err
	}
	srv, err := reactor.NewServer(h)
	if err != nil {
		return err
	}
	bound, err := srv.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", bound)
	return srv.Run(ctx, 5*time.Second)
}

// replyError is the last reply before a connection closes on bad input.
func replyError(c *reactor.Conn, err error) {
	if errors.Is(err, frame.ErrTooLong) {
		c.Write([]byte("-ERR line too long\r\n"))
	}
}

// command runs one command line. line is a view into the input: valid only during the call.
func (s *store) command(c *reactor.Conn, line []byte) error {
	args := bytes.Fields(line)
	if len(args) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cmd := string(bytes.ToUpper(args[0])); {
	case cmd == "PING" && len(args) == 1:
		c.Write([]byte("+PONG\r\n"))
	case cmd == "SET" && len(args) == 3:
		s.m[string(args[1])] = string(args[2])
		c.Write([]byte("+OK\r\n"))
	case cmd == "GET" && len(args) == 2:
		v, ok := s.m[string(args[1])]
		if !ok {
			c.Write([]byte("$-1\r\n"))
			break
		}
		fmt.Fprintf(c, "$%d\r\n%s\r\n", len(v), v)
	case cmd == "DEL" && len(args) >= 2:
		n := 0
		for _, k := range args[1:] {
			if _, ok := s.m[string(k)]; ok {
				delete(s.m, string(k))
				n++
			}
		}
		c.Write([]byte(":" + strconv.Itoa(n) + "\r\n"))
	case cmd == "QUIT" && len(args) == 1:
		c.Write([]byte("+OK\r\n"))
		return frame.ErrClose // flush the reply, then close
	default:
		fmt.Fprintf(c, "-ERR unknown command or wrong number of arguments for %q\r\n", args[0])
	}
	return nil
}
