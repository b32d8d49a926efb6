package reactor

import (
	"errors"

	"github.com/reactord/reactord/internal/sockopt"
)

// Errors returned by the reactor, matched with errors.Is. Errors from the kernel are returned
// wrapped (os.SyscallError), so errors.Is(err, unix.ECONNRESET) and similar work too.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close, by Start, Listen and
	// ListenPacket on a closed server, and passed to OnClose for connections that were still
	// open when the server was closed.
	ErrServerClosed = errors.New("reactor: server closed")
	// ErrServerStarted is returned by Start when the server is already running.
	ErrServerStarted = errors.New("reactor: server already started")
	// ErrLoopClosed is returned by Loop.Post (and so by AsyncWrite and Close) once the loop has
	// stopped.
	ErrLoopClosed = errors.New("reactor: loop closed")
	// ErrConnClosed is returned by Conn methods once Close was requested or the connection is
	// closed.
	ErrConnClosed = errors.New("reactor: connection closed")
	// ErrIdleTimeout is passed to OnClose when a connection saw neither input nor output
	// progress for its idle timeout.
	ErrIdleTimeout = errors.New("reactor: idle timeout")
	// ErrReadTimeout is passed to OnClose when a reading connection received nothing for its
	// read timeout.
	ErrReadTimeout = errors.New("reactor: read timeout")
	// ErrDeadline is passed to OnClose when a deadline set with Conn.SetDeadline is reached
	// and the Handler does not implement DeadlineHandler.
	ErrDeadline = errors.New("reactor: deadline reached")
	// ErrTooManyConns is logged (and reported in Stats.AcceptPaused) when accepting pauses
	// because WithMaxConns connections are open.
	ErrTooManyConns = errors.New("reactor: too many connections")
	// ErrBadConsumed is passed to OnClose when OnData returned a count below zero or above
	// len(in); the connection is closed, nothing panics.
	ErrBadConsumed = errors.New("reactor: OnData returned an invalid consumed count")
	// ErrInvalidOption is returned by NewServer for an option value out of range.
	ErrInvalidOption = errors.New("reactor: invalid option")
	// ErrInvalidArgument is returned for a nil handler, nil function, nil file, negative
	// offset or similar bad argument.
	ErrInvalidArgument = errors.New("reactor: invalid argument")
	// ErrUnsupportedNetwork is returned by Listen and ListenPacket for a network they do not
	// serve.
	ErrUnsupportedNetwork = sockopt.ErrNetwork
	// ErrCalledOnLoop is returned by Shutdown, Serve, Run, ListenerFds and ReleaseListeners
	// when called on a loop goroutine (of any Server), and by Conn.AsyncWriteContext when it
	// would have to wait there: a loop never waits for a loop. Call them from another
	// goroutine.
	ErrCalledOnLoop = errors.New("reactor: called on a loop goroutine, which must not wait")
	// ErrBadAddress is returned for an address that cannot be parsed or does not fit the
	// network.
	ErrBadAddress = sockopt.ErrAddress
	// ErrTLSHandshakeTimeout is counted in Stats.TLSHandshakeTimeouts when a TLS connection
	// did not complete its handshake within WithTLSHandshakeTimeout; the connection is closed
	// (the Handler never saw it).
	ErrTLSHandshakeTimeout = errors.New("reactor: TLS handshake timeout")
)
