package http

import (
	"errors"
	nethttp "net/http"

	"github.com/reactord/reactord/reactor"
)

// ParseError is a malformed or unacceptable request. Status is the HTTP status code the server
// should answer with (400, 413, 414, 417, 431, 501, 505, or 408 for a read timeout) and Reason a
// short, constant, human-readable explanation that is safe to send back to the client.
//
// Every ParseError the parser returns is one of the package-level Err* values below, so callers
// match them with errors.Is (or compare pointers) and returning one never allocates. After a
// ParseError the connection must be closed once the error response is written: the parser can no
// longer tell where the next request would start.
type ParseError struct {
	// Status is the response status code to send.
	Status int
	// Reason is a short description without the status text, e.g. "duplicate Content-Length".
	Reason string
	msg    string
}

// Error returns "http: <reason>". It does not allocate.
func (e *ParseError) Error() string { return e.msg }

func newParseError(status int, reason string) *ParseError {
	return &ParseError{Status: status, Reason: reason, msg: "http: " + reason}
}

// Request-line errors.
var (
	// ErrRequestLine: the request-line is not method SP request-target SP HTTP-version
	// (several spaces, a tab, a missing part, HTTP/0.9 style).
	ErrRequestLine = newParseError(400, "malformed request line")
	// ErrMethod: the method is empty or holds a byte that is not a token character.
	ErrMethod = newParseError(400, "invalid method")
	// ErrTarget: the request-target is not a valid origin-, absolute-, authority- (CONNECT
	// only) or asterisk-form (OPTIONS only), or holds a byte outside the URI character set.
	ErrTarget = newParseError(400, "invalid request target")
	// ErrURITooLong: the request-line is longer than Limits.MaxRequestLineBytes (414).
	ErrURITooLong = newParseError(414, "request target too long")
	// ErrVersion: the HTTP-version is not exactly "HTTP/" DIGIT "." DIGIT.
	ErrVersion = newParseError(400, "malformed HTTP version")
	// ErrVersionNotSupported: a well-formed version whose major number is not 1 (505).
	ErrVersionNotSupported = newParseError(505, "HTTP version not supported")
)

// Line and field errors (header section and chunked trailer section).
var (
	// ErrBareLF: a line ended in LF without CR and Limits.AllowBareLF is off.
	ErrBareLF = newParseError(400, "bare LF line terminator")
	// ErrBareCR: a CR not followed by LF.
	ErrBareCR = newParseError(400, "bare CR")
	// ErrLeadingWhitespace: whitespace at the start of the first field line.
	ErrLeadingWhitespace = newParseError(400, "whitespace before first header line")
	// ErrObsFold: a field line starting with SP or HTAB (obsolete line folding).
	ErrObsFold = newParseError(400, "obsolete line folding")
	// ErrFieldLine: a field line without a colon.
	ErrFieldLine = newParseError(400, "header line without colon")
	// ErrFieldName: an empty field name or one holding a non-token byte.
	ErrFieldName = newParseError(400, "invalid header name")
	// ErrSpaceBeforeColon: whitespace between the field name and the colon.
	ErrSpaceBeforeColon = newParseError(400, "whitespace before colon in header")
	// ErrFieldValue: a control character, DEL or NUL in a field value.
	ErrFieldValue = newParseError(400, "invalid character in header value")
	// ErrHeaderTooLarge: the header section exceeds Limits.MaxHeaderBytes (431).
	ErrHeaderTooLarge = newParseError(431, "header section too large")
	// ErrTooManyHeaders: more field lines than Limits.MaxHeaderCount (431).
	ErrTooManyHeaders = newParseError(431, "too many header fields")
)

// Semantic errors found once the header section is complete.
var (
	// ErrMissingHost: an HTTP/1.1 request without a Host header.
	ErrMissingHost = newParseError(400, "missing Host header")
	// ErrDuplicateHost: more than one Host header line (even with identical values).
	ErrDuplicateHost = newParseError(400, "duplicate Host header")
	// ErrHost: a Host value that is empty or not uri-host [":" port].
	ErrHost = newParseError(400, "invalid Host header")
	// ErrContentLength: a Content-Length that is not 1*DIGIT or overflows int64.
	ErrContentLength = newParseError(400, "invalid Content-Length")
	// ErrDuplicateContentLength: more than one Content-Length line or a list value. Identical
	// duplicates are rejected too: RFC 9110 §8.6 allows but does not require accepting them,
	// and rejecting removes a request-smuggling surface.
	ErrDuplicateContentLength = newParseError(400, "duplicate Content-Length")
	// ErrContentLengthWithTE: both Content-Length and Transfer-Encoding are present.
	ErrContentLengthWithTE = newParseError(400, "Content-Length with Transfer-Encoding")
	// ErrTransferEncodingHTTP10: Transfer-Encoding in an HTTP/1.0 request.
	ErrTransferEncodingHTTP10 = newParseError(400, "Transfer-Encoding in HTTP/1.0 request")
	// ErrTransferEncoding: an empty or malformed Transfer-Encoding list, chunked applied twice,
	// or chunked with parameters.
	ErrTransferEncoding = newParseError(400, "invalid Transfer-Encoding")
	// ErrChunkedNotFinal: chunked is present but not the final transfer coding.
	ErrChunkedNotFinal = newParseError(400, "chunked is not the final transfer coding")
	// ErrUnknownTransferCoding: a transfer coding other than chunked (501).
	ErrUnknownTransferCoding = newParseError(501, "unsupported transfer coding")
	// ErrBodyTooLarge: the body exceeds Limits.MaxBodyBytes (413).
	ErrBodyTooLarge = newParseError(413, "request body too large")
	// ErrExpectation: an Expect value other than 100-continue (417).
	ErrExpectation = newParseError(417, "unsupported expectation")
)

// Chunked body errors.
var (
	// ErrChunkSize: a chunk-size that is empty, not hex, signed, 0x-prefixed, followed by
	// junk or whitespace, or that overflows.
	ErrChunkSize = newParseError(400, "invalid chunk size")
	// ErrChunkExtension: a malformed chunk extension (empty name, bad token, unbalanced quote).
	ErrChunkExtension = newParseError(400, "invalid chunk extension")
	// ErrChunkLineTooLong: a chunk-size line longer than Limits.MaxChunkLineBytes.
	ErrChunkLineTooLong = newParseError(400, "chunk size line too long")
	// ErrChunkData: chunk data not followed by CRLF (more data than the size declared).
	ErrChunkData = newParseError(400, "chunk data not terminated by CRLF")
)

// ErrRequestTimeout is not returned by the parser; it is the ParseError the connection layer
// answers with when a read timeout fires while a request is partially received (408).
var ErrRequestTimeout = newParseError(408, "request timeout")

// Argument and state errors of the exported API (not network input).
var (
	// ErrInvalidLimits: a Limits field is negative or above its documented maximum.
	ErrInvalidLimits = errors.New("http: invalid limits")
	// ErrInvalidStatus: a status code outside the range the call accepts.
	ErrInvalidStatus = errors.New("http: invalid status code")
	// ErrInvalidHeaderName: a response header name that is empty or not a token.
	ErrInvalidHeaderName = errors.New("http: invalid header name")
	// ErrInvalidHeaderValue: a response header value holding CR, LF, NUL or another control
	// character other than HTAB; nothing is written, so a handler cannot inject lines.
	ErrInvalidHeaderValue = errors.New("http: invalid header value")
	// ErrReservedHeader: the header is managed by the writer (Transfer-Encoding, or a
	// Connection value other than "close").
	ErrReservedHeader = errors.New("http: header is managed by the response writer")
	// ErrHeadersSent: the status or headers were changed after the head was written.
	ErrHeadersSent = errors.New("http: headers already written")
	// ErrBodyNotAllowed: body bytes for a status that has no content (1xx, 204, 304).
	ErrBodyNotAllowed = errors.New("http: response status does not allow a body")
	// ErrContentLengthMismatch: the bytes written differ from the declared Content-Length.
	ErrContentLengthMismatch = errors.New("http: body length does not match Content-Length")
	// ErrFinished: a write after Finish.
	ErrFinished = errors.New("http: response already finished")
	// ErrNotStarted: a ResponseWriter used before Begin.
	ErrNotStarted = errors.New("http: response writer not started")
)

// ErrInputShrank is returned by Parser.Parse and ChunkedDecoder.Decode when the input is shorter
// than what an earlier call already processed: the caller broke the contract of handing back the
// unconsumed bytes unchanged. Call Reset before parsing unrelated input.
var ErrInputShrank = errors.New("http: input shorter than already parsed; call Reset")

// ErrInvalidArgument is returned for a nil file, negative offset or length, nil handler and
// similar bad arguments of the exported API. It is the same value as
// reactor.ErrInvalidArgument, so errors.Is matches it whichever layer refused the argument.
var ErrInvalidArgument = reactor.ErrInvalidArgument

// ErrSendFileUnsupported is returned by ResponseWriter.SendFile when the writer is not serving
// a Server connection (a writer used on its own, or the net/http adapter's).
var ErrSendFileUnsupported = errors.New("http: SendFile needs a Server connection")

// ErrHandlerPanic is the RequestInfo.Err of a request whose handler panicked (answered with
// 500 and a close). It is a *ParseError only so it can be answered with AppendError.
var ErrHandlerPanic = newParseError(500, "internal error")

// ErrClientGone is returned by the adapter's http.ResponseWriter once the client connection
// has closed (the request's context is cancelled then too).
var ErrClientGone = errors.New("http: client connection closed")

// ErrInvalidContentLength: a negative or non-numeric response Content-Length.
var ErrInvalidContentLength = errors.New("http: invalid Content-Length")

// ErrUpgradeHTTP10 is returned by Upgrade (and the adapter's Hijack after WriteHeader(101)) for
// an HTTP/1.0 request: 101 Switching Protocols does not exist in HTTP/1.0 (RFC 9110 §15.2).
var ErrUpgradeHTTP10 = errors.New("http: protocol upgrade on an HTTP/1.0 request")

// ErrHijacked is returned by the adapter's http.ResponseWriter methods after Hijack, and by
// a second Hijack (net/http's http.ErrHijacked wraps the same meaning; errors.Is matches both).
var ErrHijacked = nethttp.ErrHijacked

// ErrCalledFromHandler is returned by Server.Shutdown when it is called from a handler of the
// same server: Shutdown waits for every request to finish, the caller's own included, so it
// would wait until its context expires. Call it from a new goroutine (go s.Shutdown(ctx)), or
// use Close, which may be called from a handler.
var ErrCalledFromHandler = errors.New("http: Shutdown called from one of the server's handlers")

// ErrOverloaded is the 503 answer of the adapter when WithMaxQueue requests already wait for a
// worker: the request is refused at once instead of queueing without limit. RequestInfo.Err
// carries it for the Observer.
var ErrOverloaded = newParseError(StatusServiceUnavailable, "server overloaded")
