package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reactord/reactord/bench/internal/servers"
	"github.com/reactord/reactord/bench/internal/wsbench"
)

func runWS(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "ws", "[-servers ws-reactord,ws-gorilla,...] [-modes echo,broadcast,idle] [flags]", `
WebSocket servers side by side: ours (codec/websocket) and the Go peers — gorilla/websocket,
coder/websocket and gobwas/ws on net/http, nbio's websocket on its own engine, lxzan/gws. Each
server runs as a child process pinned to -server-cpu with GOMAXPROCS=-gomaxprocs; this process
(the load generator, one epoll loop over raw descriptors) is pinned to -client-cpu. Servers
are interleaved within every round, their order rotating.

Modes:
  echo       -c connections each keep one 64-byte message in flight; server CPU µs per
             message from /proc/PID/stat over the measured window (after -warmup).
  broadcast  -n connections; one asks the server to broadcast a 64-byte message to all;
             the time until every connection has it and the server's CPU per broadcast,
             -k broadcasts per round (median time).
  idle       -idle open WebSocket connections doing nothing; the growth of the server's RSS
             (and Go heap+stacks) per connection. Source addresses 127.0.0.1, .2, ... give
             each 25,000 connections their own ephemeral ports. RLIMIT_NOFILE is raised.

The markdown summary gives medians over the rounds and ws-reactord's ratio to the best peer.`)
	names := fs.String("servers", joinNames(servers.WebSocketNames()), "comma-separated `servers`")
	modes := fs.String("modes", "echo,broadcast,idle", "comma-separated `modes`")
	conns := fs.Int("c", 1000, "echo: connections")
	warmup := fs.Duration("warmup", time.Second, "echo: warm-up before the measured window")
	dur := fs.Duration("d", 5*time.Second, "echo: measured window")
	bconns := fs.Int("n", 10000, "broadcast: connections")
	bcount := fs.Int("k", 20, "broadcast: broadcasts per round")
	idle := fs.Int("idle", 100000, "idle: connections")
	rounds := fs.Int("rounds", 3, "rounds")
	serverCPU := fs.Int("server-cpu", 0, "pin the server child to this CPU (-1: no pinning)")
	clientCPU := fs.Int("client-cpu", 1, "pin the load generator to this CPU (-1: no pinning)")
	gmp := fs.Int("gomaxprocs", 1, "GOMAXPROCS of the server child (0: inherit)")
	loops := fs.Int("loops", 1, "event loops / pollers where the server has them")
	jsonOut := fs.String("json", "", "also write the runs as JSON to `file` (- for stdout)")
	quiet := fs.Bool("q", false, "no line per run")
	from := fs.String("report", "", "print the summary of a `file` written by -json instead of running")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			return err
		}
		var results []wsbench.Result
		if err := json.Unmarshal(b, &results); err != nil {
			return err
		}
		wsbench.Markdown(env.Stdout, results)
		return nil
	}
	for _, n := range stringList(*names) {
		if _, err := servers.Lookup(n); err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
	}
	cfg := wsbench.Config{
		Servers: stringList(*names), Modes: stringList(*modes),
		EchoConns: *conns, Warmup: *warmup, Duration: *dur,
		BroadcastConns: *bconns, Broadcasts: *bcount, IdleConns: *idle, Rounds: *rounds,
		ServerCPU: *serverCPU, ClientCPU: *clientCPU, GOMAXPROCS: *gmp, Loops: *loops,
		Stderr: io.Discard,
	}
	if !*quiet {
		cfg.Log = env.Stderr
	}
	if *conns < 1 || *bconns < 2 || *bcount < 1 || *idle < 1 {
		return fmt.Errorf("%w: -c, -n, -k and -idle must be positive (-n at least 2)", ErrUsage)
	}
	results, err := wsbench.Run(ctx, cfg)
	if len(results) > 0 {
		fmt.Fprintf(env.Stdout, "bench ws: %d rounds, server pinned to CPU %d with GOMAXPROCS=%d, load generator on CPU %d\n",
			*rounds, *serverCPU, *gmp, *clientCPU)
		wsbench.Markdown(env.Stdout, results)
		if werr := writeFileOrStdout(env, *jsonOut, func(w io.Writer) error {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(results)
		}); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func joinNames(ns []string) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += ","
		}
		s += n
	}
	return s
}
