// Package runctx is the one implementation of the Run helpers of reactor.Server and
// codec/http's Server: serve until a context is done, then drain within a bound.
//
// It exists so the two servers share the ordering that matters (start before waiting, so a
// start error is returned rather than raced; shut down only once; always wait for Serve to
// return, so Run never leaks its goroutine) instead of each re-deriving it.
package runctx

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Server is what Run drives. Closed is the error Serve returns after Shutdown or Close, and
// Started the error Start returns when the server already runs (both are tolerated).
type Server struct {
	Start    func() error
	Serve    func() error
	Shutdown func(ctx context.Context) error
	Close    func() error
	Closed   error
	Started  error
	// Invalid is wrapped into the error for a nil ctx or a negative drain.
	Invalid error
	// Name prefixes the errors Run makes ("reactor", "http").
	Name string
}

// Run starts s if needed, serves until ctx is done or the server stops by itself, then shuts
// it down letting connections drain for at most drain (0: close at once). See
// reactor.Server.Run for the contract.
func Run(ctx context.Context, drain time.Duration, s Server) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", s.Invalid)
	}
	if drain < 0 {
		return fmt.Errorf("%w: negative drain %v", s.Invalid, drain)
	}
	if err := s.Start(); err != nil && !errors.Is(err, s.Started) {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	select {
	case err := <-served:
		// Stopped without ctx: by Shutdown or Close from elsewhere (a clean stop), or by a
		// failed loop.
		if errors.Is(err, s.Closed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	var stopErr error
	if drain == 0 {
		stopErr = s.Close()
	} else {
		// WithoutCancel keeps ctx's values (a logger, a trace) for the drain but not its
		// cancellation, which is what brought us here.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
		stopErr = s.Shutdown(dctx)
		cancel()
	}
	// Serve returns once every loop has stopped, whatever ended it.
	serveErr := <-served
	switch {
	case errors.Is(stopErr, context.DeadlineExceeded):
		return fmt.Errorf("%s: connections still busy after draining for %v were closed: %w", s.Name, drain, stopErr)
	case stopErr != nil && !errors.Is(stopErr, s.Closed):
		return stopErr
	case serveErr != nil && !errors.Is(serveErr, s.Closed):
		return serveErr
	}
	return nil
}
