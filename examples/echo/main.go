// Command echo is the "hello world" of event loops: a TCP server on the reactor that writes
// back every byte it receives.
//
//	go run ./examples/echo -addr 127.0.0.1:9000
//
// It shows the smallest complete embedding: a Handler (here reactor.HandlerFuncs), NewServer
// with options, Listen, Start, and a graceful Shutdown on SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "TCP address to listen on (port 0 picks a free port)")
	loops := flag.Int("loops", 0, "number of event loops (0 = GOMAXPROCS)")
	backend := flag.String("poller", "auto", "poller backend: auto, epoll, poll, select or kqueue (auto honours $REACTOR_POLLER)")
	flag.Parse()
	if err := run(*addr, *loops, *backend); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run(addr string, loops int, backend string) error {
	// Catch the signals before anything else: one arriving before this would kill the
	// process instead of shutting it down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer log.Sync()

	echo := reactor.HandlerFuncs{
		// OnData runs on the connection's loop goroutine. in is only valid during the call;
		// Write copies it into the connection's output, which leaves in one write(2) at the
		// end of the loop iteration. Returning len(in) consumes everything.
		Data: func(c *reactor.Conn, in []byte) int {
			c.Write(in)
			return len(in)
		},
	}
	srv, err := reactor.NewServer(echo,
		reactor.WithLoops(loops),
		reactor.WithPoller(backend),
		reactor.WithLogger(log),
	)
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
	fmt.Printf("listening on %s (poller %s, %d loops)\n", bound, srv.PollerName(), len(srv.Loops()))
	// Serve until SIGINT or SIGTERM, then shut down gracefully: no new connections,
	// in-flight output is flushed, idle connections close; 5 s at most.
	return srv.Run(ctx, 5*time.Second)
}
