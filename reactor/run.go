package reactor

import (
	"context"
	"time"

	"github.com/reactord/reactord/internal/runctx"
)

// Run is the whole life of a server in one call: it starts the server if Start was not
// called, serves until ctx is done, then shuts down gracefully, giving busy connections up to
// drain to finish (Shutdown with that bound; drain 0 closes everything at once, as Close). It
// returns once every loop has stopped.
//
// It returns nil after a clean stop: ctx was done and every connection finished within drain,
// or the server was stopped from elsewhere with Shutdown or Close. Otherwise it returns the
// error that stopped the server early (Start's, or a failed loop's), or, when drain ran out
// with connections still busy (they were then closed), an error wrapping
// context.DeadlineExceeded. ErrInvalidArgument for a nil ctx or a negative drain.
//
// The usual main, with signals from the standard library:
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	if _, err := srv.Listen("tcp", addr); err != nil { ... }
//	if err := srv.Run(ctx, 5*time.Second); err != nil { ... }
//
// Any goroutine but a loop goroutine, of s or any other Server (a loop never waits for a
// loop: ErrCalledOnLoop).
func (s *Server) Run(ctx context.Context, drain time.Duration) error {
	return runctx.Run(ctx, drain, runctx.Server{
		Start: s.Start, Serve: s.Serve, Shutdown: s.Shutdown, Close: s.Close,
		Closed: ErrServerClosed, Started: ErrServerStarted, Invalid: ErrInvalidArgument,
		Name: "reactor",
	})
}
