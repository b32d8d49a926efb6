package websocket

import (
	"errors"
	"strconv"

	"github.com/reactord/reactord/reactor"
)

// StatusCode is a close status code (RFC 6455 §7.4, and the IANA WebSocket Close Code Number
// Registry).
type StatusCode uint16

// Close status codes.
const (
	CloseNormal             StatusCode = 1000 // the purpose of the connection was fulfilled
	CloseGoingAway          StatusCode = 1001 // server shutting down, or browser leaving the page
	CloseProtocolError      StatusCode = 1002 // a frame broke RFC 6455
	CloseUnsupportedData    StatusCode = 1003 // a message type the endpoint cannot accept
	CloseNoStatus           StatusCode = 1005 // never sent: a close frame without a code
	CloseAbnormal           StatusCode = 1006 // never sent: the connection dropped without a close frame
	CloseInvalidPayload     StatusCode = 1007 // a text message that is not UTF-8, or undecodable compressed data
	ClosePolicyViolation    StatusCode = 1008 // a generic refusal (a slow consumer, say)
	CloseMessageTooBig      StatusCode = 1009 // a frame or message over the configured limit
	CloseMandatoryExtension StatusCode = 1010 // sent by clients only: an extension the server did not accept
	CloseInternalError      StatusCode = 1011 // the server failed (a handler panicked)
	CloseServiceRestart     StatusCode = 1012
	CloseTryAgainLater      StatusCode = 1013
	CloseBadGateway         StatusCode = 1014
	CloseTLSHandshake       StatusCode = 1015 // never sent
)

// String returns the code's registered name and number, such as "1000 (normal closure)".
func (c StatusCode) String() string {
	name := ""
	switch c {
	case CloseNormal:
		name = "normal closure"
	case CloseGoingAway:
		name = "going away"
	case CloseProtocolError:
		name = "protocol error"
	case CloseUnsupportedData:
		name = "unsupported data"
	case CloseNoStatus:
		name = "no status received"
	case CloseAbnormal:
		name = "abnormal closure"
	case CloseInvalidPayload:
		name = "invalid payload data"
	case ClosePolicyViolation:
		name = "policy violation"
	case CloseMessageTooBig:
		name = "message too big"
	case CloseMandatoryExtension:
		name = "mandatory extension"
	case CloseInternalError:
		name = "internal error"
	case CloseServiceRestart:
		name = "service restart"
	case CloseTryAgainLater:
		name = "try again later"
	case CloseBadGateway:
		name = "bad gateway"
	case CloseTLSHandshake:
		name = "TLS handshake"
	default:
		return strconv.Itoa(int(c))
	}
	return strconv.Itoa(int(c)) + " (" + name + ")"
}

// validWireCode reports whether a close frame may carry code: the codes RFC 6455 defines for
// use on the wire, the later IANA registrations 1012-1014, and the ranges for libraries and
// frameworks (3000-3999) and applications (4000-4999). 1005, 1006 and 1015 are reserved for
// reports and never sent; 1004 and the rest of 1000-2999 are unassigned.
func validWireCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// CloseError is how a connection ended when a close frame was exchanged: passed to
// Handler.OnClose. Code and Reason are those of the peer's close frame when Remote is true
// (CloseNoStatus when it carried none), and those this side sent otherwise (the server
// closed: Conn.Close, a protocol error, a limit, shutdown). Reason is a copy.
type CloseError struct {
	Code   StatusCode
	Reason string
	Remote bool // the peer sent the first close frame
}

// Error returns "websocket: closed by peer: 1000 (normal closure): reason".
func (e *CloseError) Error() string {
	who := "closed by server"
	if e.Remote {
		who = "closed by peer"
	}
	s := "websocket: " + who + ": " + e.Code.String()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Errors returned by the package, matched with errors.Is.
var (
	// ErrClosed is returned by Send, SendText, Ping and Close once the connection is closing
	// (a close frame was sent or queued) or closed.
	ErrClosed = errors.New("websocket: connection closed")
	// ErrOutputFull is returned by Send when the connection cannot take more output (see
	// WithSendLimit): the message was not queued (SlowConsumerDrop), or the connection is
	// being closed for it (SlowConsumerClose).
	ErrOutputFull = errors.New("websocket: send limit reached: slow consumer")
	// ErrInvalidUTF8 is returned by Send and SendText for a text message that is not valid
	// UTF-8, and by Close for such a reason; nothing is sent.
	ErrInvalidUTF8 = errors.New("websocket: text is not valid UTF-8")
	// ErrBadHandshake is returned (wrapped, with the reason) by Upgrader.Upgrade when the
	// request is not an acceptable WebSocket opening handshake. The error response (400, 403,
	// 405 or 426) has been written to the ResponseWriter.
	ErrBadHandshake = errors.New("websocket: bad handshake")
	// ErrPongTimeout is passed to OnClose when a keepalive ping went unanswered for the pong
	// timeout (WithKeepalive); the connection is closed at once.
	ErrPongTimeout = errors.New("websocket: pong timeout")
	// ErrCloseTimeout is passed to OnClose when the peer did not answer the server's close
	// frame within the close timeout (WithCloseTimeout); the connection is closed at once.
	ErrCloseTimeout = errors.New("websocket: peer did not complete the close handshake")
	// ErrInvalidOption is returned (wrapped, joined one per bad option) by NewUpgrader. It is
	// reactor.ErrInvalidOption, like codec/http's.
	ErrInvalidOption = reactor.ErrInvalidOption
	// ErrInvalidArgument is returned for a nil handler, a bad message type, an oversized
	// control payload and similar. It is reactor.ErrInvalidArgument, so errors.Is matches
	// whichever layer refused the argument.
	ErrInvalidArgument = reactor.ErrInvalidArgument
	// ErrCalledOnLoop is returned by SendWait when called on the connection's own loop
	// goroutine, where waiting for the output to drain would block the loop that drains it.
	ErrCalledOnLoop = errors.New("websocket: SendWait called on the connection's loop goroutine")
)
