// Command kv (before) is examples/kv written with only the API reactord had before the
// embedder helpers: the line splitting, the length limit, backpressure and the start/shutdown
// plumbing are all hand-written. docs/EMBEDDING.md compares the two; examples_test.go drives
// both with the same client.
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
)

const maxLine = 4096

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
	srv, err := reactor.NewServer(reactor.HandlerFuncs{Data: s.onData})
	if err != nil {
		return err
	}
	bound, err := srv.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", bound)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, reactor.ErrServerClosed) {
		return err
	}
	return nil
}

// onData answers every complete line in in and returns the bytes they took; a partial line
// is left for the reactor to keep.
func (s *store) onData(c *reactor.Conn, in []byte) int {
	consumed := 0
	for !c.OutputFull() {
		rest := in[consumed:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(rest) > maxLine+1 {
				c.Write([]byte("-ERR line too long\r\n"))
				c.Close()
				return len(in)
			}
			break
		}
		line := bytes.TrimSuffix(rest[:i], []byte("\r"))
		if len(line) > maxLine {
			c.Write([]byte("-ERR line too long\r\n"))
			c.Close()
			return len(in)
		}
		consumed += i + 1
		if !s.command(c, line) {
			c.Close()
			return len(in)
		}
	}
	return consumed
}

// command runs one command line and reports whether the connection stays open.
func (s *store) command(c *reactor.Conn, line []byte) bool {
	args := bytes.Fields(line)
	if len(args) == 0 {
		return true
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
		return false
	default:
		fmt.Fprintf(c, "-ERR unknown command or wrong number of arguments for %q\r\n", args[0])
	}
	return true
}
