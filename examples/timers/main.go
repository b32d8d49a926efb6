// Command timers shows the reactor's timers: a per-connection idle timeout, a one-shot timer
// per connection, and a periodic tick on every loop. It serves a line protocol:
//
//	idle 2s      set this connection's idle timeout (it closes after 2s without traffic)
//	later 500ms  write a reminder line to this connection after 500ms
//	anything     echoed back
//
// Every -tick, each loop prints how many connections it holds. Try it with
//
//	go run ./examples/timers -idle 5s
//	nc 127.0.0.1 9000
//
// All timers run on the loop goroutine that owns the connection, so their callbacks touch the
// connection directly, with no locks. Connection timeouts cost nothing per read or write: the
// reactor only records the time, and the timer is re-armed lazily when it fires.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// maxLine bounds a line, and so the input the reactor keeps for a connection.
const maxLine = 1024

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "TCP address to listen on (port 0 picks a free port)")
	idle := flag.Duration("idle", 30*time.Second, "default idle timeout of a connection")
	tick := flag.Duration("tick", 5*time.Second, "interval of the per-loop status tick")
	flag.Parse()
	if err := run(*addr, *idle, *tick); err != nil {
		fmt.Fprintln(os.Stderr, "timers:", err)
		os.Exit(1)
	}
}

// session is a connection's state, attached with SetContext. Only the connection's loop
// goroutine touches it.
type session struct {
	remote string
	idle   time.Duration
	later  *reactor.Timer // pending "later" reminder, or nil
}

type handler struct{ idle time.Duration }

func (h handler) OnOpen(c *reactor.Conn) {
	// RemoteAddr is read now: it is cached from here on, and still answers in OnClose.
	// It is nil if the peer has already gone.
	remote := "?"
	if a := c.RemoteAddr(); a != nil {
		remote = a.String()
	}
	s := &session{remote: remote, idle: h.idle}
	c.SetContext(s)
	// WithIdleTimeout would set the same default for every connection; per connection it is
	// SetIdleTimeout, which may be changed at any time (see the "idle" command).
	c.SetIdleTimeout(h.idle)
	fmt.Printf("open %s (idle timeout %v)\n", s.remote, h.idle)
	fmt.Fprintf(c, "hello %s: idle timeout %v; commands: idle <duration>, later <duration>\n", s.remote, h.idle)
}

func (h handler) OnData(c *reactor.Conn, in []byte) int {
	s := c.Context().(*session)
	consumed := 0
	for !c.OutputFull() {
		nl := bytes.IndexByte(in[consumed:], '\n')
		if nl < 0 {
			break
		}
		line := bytes.TrimRight(in[consumed:consumed+nl], "\r")
		consumed += nl + 1
		h.command(c, s, line)
	}
	if len(in)-consumed > maxLine {
		// Without a bound a peer that never sends '\n' would make the reactor keep an
		// ever-growing tail for it.
		fmt.Fprintf(c, "line longer than %d bytes\n", maxLine)
		c.Close() // after the message above is written
		return len(in)
	}
	return consumed
}

// command runs one line. line points into OnData's input: it is parsed here, not kept.
func (h handler) command(c *reactor.Conn, s *session, line []byte) {
	verb, arg, _ := bytes.Cut(line, []byte(" "))
	switch string(verb) {
	case "idle":
		d, err := time.ParseDuration(string(arg))
		if err != nil || d <= 0 {
			fmt.Fprintf(c, "idle: want a positive duration, like 2s\n")
			return
		}
		s.idle = d
		c.SetIdleTimeout(d)
		fmt.Fprintf(c, "idle timeout now %v\n", d)
	case "later":
		d, err := time.ParseDuration(string(arg))
		if err != nil || d < 0 {
			fmt.Fprintf(c, "later: want a duration, like 500ms\n")
			return
		}
		s.later.Stop() // one reminder at a time; Stop on a nil *Timer is a no-op
		// The callback runs on this loop, so it may Write to c directly. OnClose stops the
		// timer, so it never runs for a closed connection.
		s.later = c.Loop().AfterFunc(d, func() {
			s.later = nil
			fmt.Fprintf(c, "reminder after %v\n", d)
		})
		fmt.Fprintf(c, "reminder in %v\n", d)
	default:
		fmt.Fprintf(c, "echo: %s\n", line)
	}
}

func (h handler) OnClose(c *reactor.Conn, err error) {
	s := c.Context().(*session)
	s.later.Stop()
	why := "closed by the server"
	switch {
	case errors.Is(err, reactor.ErrIdleTimeout):
		why = fmt.Sprintf("idle timeout (%v)", s.idle)
	case errors.Is(err, io.EOF):
		why = "closed by the peer"
	case err != nil:
		why = err.Error()
	}
	fmt.Printf("closed %s: %s\n", s.remote, why)
}

func run(addr string, idle, tick time.Duration) error {
	// Catch the signals before anything else: one arriving before this would kill the
	// process instead of shutting it down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if idle <= 0 || tick <= 0 {
		return fmt.Errorf("-idle and -tick must be positive")
	}
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer log.Sync()
	srv, err := reactor.NewServer(handler{idle: idle}, reactor.WithLogger(log))
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
	// Every must be called on the loop's goroutine: Post runs the setup there.
	for _, l := range srv.Loops() {
		err := l.Post(func() {
			n := 0
			l.Every(tick, func() {
				n++
				fmt.Printf("tick %d on loop %d: %d connection(s)\n", n, l.Index(), l.Stats().ConnsOpen)
			})
		})
		if err != nil {
			srv.Close()
			return err
		}
	}
	fmt.Printf("listening on %s\n", bound)
	return srv.Run(ctx, 5*time.Second) // serve until SIGINT or SIGTERM, then drain
}
