package static

import (
	"os"
	"strconv"
	"time"
)

// Request holds what Serve needs from an HTTP request. The strings are copied by the caller
// out of the transport's buffers (or point into buffers that outlive the call); Serve keeps
// none of them after it returns. A header that was absent is the empty string; a header sent
// on several lines is passed joined with ", " as RFC 9110 §5.3 allows.
type Request struct {
	Method string
	// Target is the request-target in origin form, exactly as received:
	// "/dir/a%20b.txt?x=1". The query is ignored except that a redirect keeps it.
	Target string

	IfMatch           string
	IfNoneMatch       string
	IfModifiedSince   string
	IfUnmodifiedSince string
	IfRange           string
	Range             string

	// Now is the time the response is generated: the Date a transport sends with it. The
	// validators are compared against it (a Last-Modified later than Now is sent as Now,
	// RFC 9110 §8.8.2.1). The zero value means time.Now().
	Now time.Time
}

// now returns the response's origination time.
func (r *Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// Field is one response header field.
type Field struct {
	Name  string
	Value string
}

// Response is the decision for one request. Exactly one of Body and File carries the content;
// both are nil for HEAD, 304 and empty bodies.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header lists the fields to send, except Content-Length (see ContentLength) and the
	// fields a transport adds itself (Connection, Server, and Date unless Header has one:
	// Serve sends its own Date when Last-Modified is that recent, so the two agree).
	Header []Field
	// ContentLength is the value of Content-Length: the length of Body or of the file
	// section, and for HEAD the length a GET would have sent. -1 means send no
	// Content-Length and no body (304).
	ContentLength int64
	// Body is a small in-memory body (error text, directory listing, redirect note). It may
	// be shared between responses: the caller must not modify it.
	Body []byte
	// File, when non-nil, is to be sent from Offset for ContentLength bytes (with
	// sendfile(2) where available). The caller owns it and must call Close on the Response
	// (or the file) once it has been sent or abandoned.
	File *os.File
	// Offset is where the file section starts.
	Offset int64
}

// Close closes the response's file, if any. It is safe to call more than once.
func (r *Response) Close() error {
	if r == nil || r.File == nil {
		return nil
	}
	err := r.File.Close()
	r.File = nil
	return err
}

// Get returns the value of the first field called name (case-sensitive, canonical form), or
// "".
func (r *Response) Get(name string) string {
	for _, f := range r.Header {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Precomputed bodies for error statuses: shared, never modified.
var statusBodies = map[int][]byte{}

func init() {
	for code, text := range map[int]string{
		301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
		405: "Method Not Allowed", 412: "Precondition Failed", 416: "Range Not Satisfiable",
		500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
	} {
		statusBodies[code] = []byte(strconv.Itoa(code) + " " + text + "\n")
	}
}

const textPlain = "text/plain; charset=utf-8"

// errorResponse is a short text/plain answer. HEAD gets the headers without the body.
func errorResponse(code int, head bool, extra ...Field) Response {
	body := statusBodies[code]
	h := make([]Field, 0, 2+len(extra))
	h = append(h, Field{"Content-Type", textPlain}, Field{"X-Content-Type-Options", "nosniff"})
	h = append(h, extra...)
	r := Response{Status: code, Header: h, ContentLength: int64(len(body)), Body: body}
	if head {
		r.Body = nil
	}
	return r
}
