package http

import (
	"fmt"
	"strconv"

	"github.com/reactord/reactord/reactor"
)

// HeaderField is one header field of a ClientRequest.
type HeaderField struct {
	Name, Value string
}

// ClientRequest is a request for Client.Do. The client adds the Host field (unless Header
// has one), and Content-Length for a body (or for POST, PUT and PATCH without one).
type ClientRequest struct {
	// Method is the request method; "" means GET.
	Method string
	// Target is the request-target in origin form ("/path?query"); "" means "/".
	Target string
	// Host is the Host field value; "" means the client's upstream address ("localhost" for
	// a Unix socket).
	Host string
	// Header holds further fields. Framing (Content-Length, Transfer-Encoding) and
	// connection-specific fields (Connection, Keep-Alive, Upgrade, TE) are refused: the client
	// manages them.
	Header []HeaderField
	// Body is sent with a Content-Length.
	Body []byte
}

// ClientResponse is a complete response given to Client.Do's callback. It and everything it
// returns are valid only during the callback; copy what must outlive it.
type ClientResponse struct {
	Response         // the head (status, fields)
	Body     []byte  // the body, decoded
	trailers []field // into tbuf
	tbuf     []byte
}

// NumTrailers returns the number of trailer fields of a chunked response.
func (r *ClientResponse) NumTrailers() int { return len(r.trailers) }

// TrailerAt returns the i-th trailer field; out-of-range i returns nil, nil.
func (r *ClientResponse) TrailerAt(i int) (name, value []byte) {
	if i < 0 || i >= len(r.trailers) {
		return nil, nil
	}
	f := r.trailers[i]
	return f.name.of(r.tbuf), f.value.of(r.tbuf)
}

// Trailer returns the first trailer field named name (ASCII case-insensitive).
func (r *ClientResponse) Trailer(name string) ([]byte, bool) { return lookup(r.tbuf, r.trailers, name) }

// Do sends req to the upstream on one of l's connections and calls done once, on l's
// goroutine, with the complete response or the error that ended the exchange (see
// GatewayStatus). The body is buffered, up to Limits.MaxBodyBytes (DefaultMaxBodyBytes when
// that is 0); a larger one ends with ErrResponseTooLarge. Do must be called on l's goroutine;
// its errors (no callback then) are Send's, ErrInvalidArgument for a nil done or a malformed
// request, ErrInvalidHeaderName, ErrInvalidHeaderValue and ErrReservedHeader. For a
// response streamed with backpressure, use Send.
func (c *Client) Do(l *reactor.Loop, req *ClientRequest, done func(*ClientResponse, error)) error {
	if req == nil || done == nil {
		return fmt.Errorf("%w: Do(_, %v, callback nil: %t)", ErrInvalidArgument, req, done == nil)
	}
	wire, err := c.serialize(req)
	if err != nil {
		return err
	}
	limit := c.cfg.Limits.MaxBodyBytes
	if limit == 0 {
		limit = DefaultMaxBodyBytes
	}
	h := &doHandler{done: done, limit: limit}
	_, err = c.Send(l, wire, h)
	return err
}

// serialize builds the request's wire form.
func (c *Client) serialize(r *ClientRequest) ([]byte, error) {
	method, target, host := r.Method, r.Target, r.Host
	if method == "" {
		method = "GET"
	}
	if !validName(method) {
		return nil, fmt.Errorf("%w: method %q", ErrInvalidArgument, method)
	}
	if target == "" {
		target = "/"
	}
	if target[0] != '/' || !validURIChars([]byte(target), &pathTable) {
		return nil, fmt.Errorf("%w: target %q is not in origin form", ErrInvalidArgument, target)
	}
	hostSet := false
	for _, f := range r.Header {
		if !validName(f.Name) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidHeaderName, f.Name)
		}
		if !validValue(f.Value) {
			return nil, fmt.Errorf("%w: %s", ErrInvalidHeaderValue, f.Name)
		}
		n := []byte(f.Name)
		switch {
		case equalFold(n, "content-length"), equalFold(n, "transfer-encoding"), equalFold(n, "connection"),
			equalFold(n, "keep-alive"), equalFold(n, "upgrade"), equalFold(n, "te"):
			return nil, fmt.Errorf("%w: %s", ErrReservedHeader, f.Name)
		case equalFold(n, "host"):
			hostSet = true
		}
	}
	if host == "" {
		host = c.address
		if c.network == "unix" {
			host = "localhost"
		}
	}
	if !hostSet && !validValue(host) {
		return nil, fmt.Errorf("%w: Host %q", ErrInvalidHeaderValue, host)
	}
	b := make([]byte, 0, 64+len(target)+len(host)+32*len(r.Header)+len(r.Body))
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\n"...)
	if !hostSet {
		b = append(b, "Host: "...)
		b = append(b, host...)
		b = append(b, "\r\n"...)
	}
	for _, f := range r.Header {
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	if len(r.Body) > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, r.Body...), nil
}

// doHandler buffers one response for Do.
type doHandler struct {
	done  func(*ClientResponse, error)
	limit int64
	resp  ClientResponse
	head  []byte
	over  bool
}

func (h *doHandler) OnResponse(x *Exchange, r *Response) {
	// The head's bytes belong to the connection's input and are gone by the end: keep a copy.
	h.head = append(h.head[:0], r.buf...)
	h.resp.Response = *r
	h.resp.buf = h.head
	h.resp.fields = append([]field(nil), r.fields...)
}

func (h *doHandler) OnResponseBody(x *Exchange, body []byte) {
	if h.over {
		return
	}
	if int64(len(h.resp.Body)+len(body)) > h.limit {
		h.over = true
		x.Cancel()
		h.done(nil, ErrResponseTooLarge)
		return
	}
	h.resp.Body = append(h.resp.Body, body...)
}

func (h *doHandler) OnResponseEnd(x *Exchange, err error) {
	if err != nil {
		h.done(nil, err)
		return
	}
	for i := 0; i < x.NumTrailers(); i++ {
		name, value := x.TrailerAt(i)
		start := len(h.resp.tbuf)
		h.resp.tbuf = append(h.resp.tbuf, name...)
		h.resp.tbuf = append(h.resp.tbuf, value...)
		h.resp.trailers = append(h.resp.trailers, field{
			name:  mkspan(start, start+len(name)),
			value: mkspan(start+len(name), len(h.resp.tbuf)),
		})
	}
	if h.resp.Body == nil {
		h.resp.Body = []byte{}
	}
	h.done(&h.resp, nil)
}
