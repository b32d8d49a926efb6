package http

// Errors of the response parser (ResponseParser) and of the client. Their Status is 502 (Bad
// Gateway), or 504 for a timeout: what a gateway answers its own client when an upstream
// response fails this way. The field-level errors the response parser shares with the request
// parser (ErrBareLF, ErrObsFold, ErrFieldName, ErrHeaderTooLarge, ErrContentLength,
// ErrDuplicateContentLength, ErrContentLengthWithTE, ErrTransferEncoding, ErrChunkSize, ...)
// keep their request-side Status; a gateway answers 502 for every one of them.
var (
	// ErrStatusLine: the status-line is not HTTP-version SP 3DIGIT [SP reason-phrase], or the
	// reason phrase holds a control character.
	ErrStatusLine = newParseError(502, "malformed status line")
	// ErrStatusCode: a status code outside 100-599.
	ErrStatusCode = newParseError(502, "invalid status code")
	// ErrStatusLineTooLong: the status-line is longer than Limits.MaxRequestLineBytes.
	ErrStatusLineTooLong = newParseError(502, "status line too long")
	// ErrResponseVersion: a response whose HTTP major version is not 1.
	ErrResponseVersion = newParseError(502, "unsupported HTTP version in response")
	// ErrResponseTEHTTP10: Transfer-Encoding in an HTTP/1.0 response (faulty framing, RFC 9112
	// §6.1).
	ErrResponseTEHTTP10 = newParseError(502, "Transfer-Encoding in HTTP/1.0 response")
	// ErrResponseTooLarge: the response body exceeds Limits.MaxBodyBytes (set explicitly:
	// a ResponseParser has no body limit by default).
	ErrResponseTooLarge = newParseError(502, "response body too large")
	// ErrTruncatedResponse: the connection ended inside a response (its head, or a body framed
	// by Content-Length or chunked).
	ErrTruncatedResponse = newParseError(502, "connection closed inside a response")
	// ErrTunnel: Parse was called after the response that turned the connection into a tunnel
	// (101 Switching Protocols, or a 2xx answer to CONNECT); what follows is not HTTP.
	ErrTunnel = newParseError(502, "connection is a tunnel after its last response")
)
