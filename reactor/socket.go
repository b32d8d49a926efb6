package reactor

import (
	"errors"

	"go.uber.org/zap"
)

// socket is a listening or datagram socket served by a loop: a *listener or a *PacketConn.
//
// Each socket has exactly one owner at a time, and only the owner touches its descriptor and
// closes it, once (shut): first the goroutine that opened it; before Start, the Server (under
// its mutex); once handed to a loop (adopt, posted to the loop), that loop's goroutine, which
// registers it and closes it when the server drains or stops, or at once if it is stopping
// already. A hand-over that fails (the loop no longer takes tasks) leaves the socket with the
// goroutine that tried. Nobody closes a socket it gave away, so a descriptor number is never
// closed twice (the second close would hit whatever file reused the number).
type socket interface {
	eventHandler
	bind(l *Loop)    // the loop that will own it; set by the owner before the hand-over
	register() error // adds it to its loop's poller; loop goroutine (or Start, before the loops run)
}

// adopt takes ownership of sk on the loop goroutine: it registers sk or, when the loop is
// draining or stopping or the poller refuses it, closes it. Tasks posted before the loop
// stopped taking them run even during teardown, so a posted adopt always runs.
func (l *Loop) adopt(sk socket) error {
	if l.stopping.Load() || l.draining {
		sk.shut()
		return ErrServerClosed
	}
	if err := sk.register(); err != nil {
		sk.shut()
		return err
	}
	return nil
}

// attach hands new sockets to the server: socket i to loop i (mod the number of loops). Before
// Start they wait in s.pending; on a running server each is posted to its loop. An ordinary
// goroutine waits for the registrations; a loop goroutine never waits for a loop, so it returns
// once the sockets are handed over. commit runs under s.mu if the sockets are kept. On error
// every socket is (or will be, by its loop) closed.
func (s *Server) attach(socks []socket, commit func()) error {
	s.mu.Lock()
	switch s.state {
	case stateNew:
		s.pending = append(s.pending, socks)
		commit()
		s.mu.Unlock()
		return nil
	case stateRunning:
	default:
		s.mu.Unlock()
		for _, sk := range socks {
			sk.shut()
		}
		return ErrServerClosed
	}
	loops := s.loops
	s.mu.Unlock()

	wait := currentLoop() == nil
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(socks))
	var errs []error
	handed := make([]bool, len(socks))
	posted := 0
	for i, sk := range socks {
		l := loops[i%len(loops)]
		sk.bind(l)
		err := l.post(task{op: opFunc, f: func() {
			err := l.adopt(sk)
			if wait {
				results <- result{i, err}
			} else if err != nil && !errors.Is(err, ErrServerClosed) {
				l.log.Error("register socket", zap.Error(err))
			}
		}})
		if err != nil {
			sk.shut() // not handed over: still ours
			errs = append(errs, ErrServerClosed)
			continue
		}
		handed[i] = true
		posted++
	}
	if wait {
		for ; posted > 0; posted-- {
			r := <-results
			if r.err != nil {
				handed[r.i] = false // its loop closed it
				errs = append(errs, r.err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Undo: each loop that took a socket closes it (after registering it: tasks run in
		// order). A loop that no longer takes tasks closes it in its teardown.
		for i, sk := range socks {
			if handed[i] {
				l := loops[i%len(loops)]
				l.post(task{op: opFunc, f: func() { sk.shut() }})
			}
		}
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		// The server began to stop meanwhile: the loops close the sockets as they drain or
		// tear down.
		return ErrServerClosed
	}
	commit()
	return nil
}
