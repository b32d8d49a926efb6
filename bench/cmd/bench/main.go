// Command bench is reactord's benchmark harness: poller backend scaling, closed-loop HTTP/1.1
// load against our stack and peers with pinned CPUs, memory per idle connection, and a server
// launcher for external tools. Run it from the bench module: `go run ./cmd/bench -h`.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/reactord/reactord/bench/internal/cli"
	"golang.org/x/sys/unix"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	code := cli.Main(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin}, os.Args[1:])
	stop()
	os.Exit(code)
}
