package http

import (
	"context"
	"time"

	"github.com/reactord/reactord/internal/runctx"
	"github.com/reactord/reactord/reactor"
)

// Run starts the server if Start was not called (the adapter's worker pool too), serves until
// ctx is done, then shuts down gracefully within drain: Shutdown with that bound, so requests
// in flight (on the loop or on the worker pool) get their responses and idle keep-alive
// connections close at once; drain 0 closes everything at once, as Close. It returns once
// the loops and the worker pool have stopped.
//
// It returns nil after a clean stop: ctx was done and every connection finished within drain,
// or the server was stopped from elsewhere with Shutdown or Close. Otherwise it returns the
// error that stopped the server early (Start's, or a failed loop's), or, when drain ran out
// with connections still busy (they were then closed and the request contexts cancelled), an
// error wrapping context.DeadlineExceeded. ErrInvalidArgument for a nil ctx or a negative
// drain.
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	if _, err := srv.Listen("tcp", addr); err != nil { ... }
//	if err := srv.Run(ctx, 5*time.Second); err != nil { ... }
//
// Any goroutine but a loop goroutine of the server (reactor.ErrCalledOnLoop).
func (s *Server) Run(ctx context.Context, drain time.Duration) error {
	return runctx.Run(ctx, drain, runctx.Server{
		Start: s.Start, Serve: s.Serve, Shutdown: s.Shutdown, Close: s.Close,
		Closed: ErrServerClosed, Started: reactor.ErrServerStarted, Invalid: ErrInvalidArgument,
		Name: "http",
	})
}
