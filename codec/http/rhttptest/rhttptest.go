// Package rhttptest tests native handlers (rhttp.Handler, a router.Router, ...) without a
// server or a socket: it feeds request bytes through the codec's own parser, runs the handler
// with a real ResponseWriter, and parses what it wrote back into a Response.
//
// It is the codec's counterpart of net/http/httptest, named so that both import without an
// alias (the codec itself is conventionally imported as rhttp): build requests with
// httptest.NewRequest, run them with rhttptest.Do.
//
//	resp := rhttptest.Do(t, handler, httptest.NewRequest("GET", "/users/42", nil))
//	if resp.Status != 200 || string(resp.Body) != `{"id":"42"}` { t.Fatal(...) }
//
// What a request goes through is what a Server does with it on a connection: the same strict
// parser and limits (a malformed request gets the codec's own error response, as on the wire,
// with the default text/plain body: a WithErrorBody hook is a Server option and is not applied),
// the same ResponseWriter with Finish called after the handler, responses in order for
// pipelined requests, and nothing after a response that closes the connection. Not included:
// the Date and Server headers (left out so responses compare exactly), timeouts, SendFile (it
// returns rhttp.ErrSendFileUnsupported here), and panic recovery (a panicking handler panics
// the test, which is louder).
//
// Misuse is loud: Do and DoRaw fail the test when the handler ignored an error a
// ResponseWriter method returned — a header set after the body started, a body longer than its
// Content-Length (see rhttp.ResponseWriter.Err). Exchange leaves that to the caller in
// Response.WriterErr.
package rhttptest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
)

// Response is one response as the handler (or the codec) produced it.
type Response struct {
	// Status is the status code, e.g. 200.
	Status int
	// Header holds the response's header fields, canonicalized as net/http does.
	Header nethttp.Header
	// Body is the body with any chunked framing removed (empty for HEAD).
	Body []byte
	// Trailer holds trailer fields of a chunked body, if any.
	Trailer nethttp.Header
	// Close reports that the connection would close after this response.
	Close bool
	// Raw is the response exactly as written to the connection.
	Raw []byte
	// WriterErr is the first error a ResponseWriter method returned while the handler ran
	// (rhttp.ResponseWriter.Err), or nil. Always nil for a response the codec made itself.
	WriterErr error
	// ParseErr is the codec's error when this response is its answer to a malformed request
	// (a *rhttp.ParseError; the handler did not run), else nil.
	ParseErr error
}

// ErrIncomplete is returned by Exchange when the input ends inside a request.
var ErrIncomplete = errors.New("rhttptest: input ends inside a request")

// Exchange runs h on every request in raw (one, or several pipelined; raw must end at a
// request boundary) with the given parser limits (zero fields take the defaults), and returns
// the responses in order. It stops after a response that closes the connection, as a server
// would. Errors: rhttp.ErrInvalidArgument for a nil h, the limits' validation error,
// ErrIncomplete, or a response the test cannot parse (a handler bypassing the writer's rules).
func Exchange(h rhttp.Handler, raw []byte, lim rhttp.Limits) ([]*Response, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", rhttp.ErrInvalidArgument)
	}
	p, err := rhttp.NewParser(lim)
	if err != nil {
		return nil, err
	}
	var w rhttp.ResponseWriter
	var out []*Response
	for len(raw) > 0 {
		n, req, err := p.Parse(raw)
		if err != nil {
			wire := rhttp.AppendError(nil, err, nil)
			resp, perr := parse(wire, "GET")
			if perr != nil {
				return out, perr
			}
			resp.ParseErr = err
			return append(out, resp), nil
		}
		if req == nil {
			return out, ErrIncomplete
		}
		method := string(req.Method())
		w.Begin(nil, req)
		h.Handle(&w, req)
		w.Finish() // an error here is in w.Err
		resp, perr := parse(w.Bytes(), method)
		if perr != nil {
			return out, fmt.Errorf("rhttptest: %s %s: %w", method, req.Target(), perr)
		}
		resp.WriterErr = w.Err()
		resp.Close = !w.KeepAlive()
		out = append(out, resp)
		if resp.Close {
			return out, nil
		}
		raw = raw[n:]
	}
	return out, nil
}

// parse reads one response to a request with method from wire.
func parse(wire []byte, method string) (*Response, error) {
	r, err := nethttp.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), &nethttp.Request{Method: method})
	if err != nil {
		return nil, fmt.Errorf("unparsable response %q: %w", wire, err)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("response %q: body: %w", wire, err)
	}
	return &Response{
		Status: r.StatusCode, Header: r.Header, Body: body, Trailer: r.Trailer,
		Close: r.Close, Raw: append([]byte(nil), wire...),
	}, nil
}

// DoRaw runs h on the raw request bytes (see Exchange; default limits) and returns the
// responses. It fails tb — and the test goes on — for every response whose handler ignored a
// ResponseWriter error; it stops the test for input that ends inside a request.
func DoRaw(tb testing.TB, h rhttp.Handler, raw string) []*Response {
	tb.Helper()
	resps, err := Exchange(h, []byte(raw), rhttp.Limits{})
	if err != nil {
		tb.Fatalf("rhttptest: %v", err)
	}
	for i, r := range resps {
		if r.WriterErr != nil {
			tb.Errorf("rhttptest: response %d (status %d): the handler ignored an error: %v", i+1, r.Status, r.WriterErr)
		}
	}
	return resps
}

// Do sends req (built with httptest.NewRequest or http.NewRequest; serialized with its Write
// method, so Host, headers and body go on the wire as net/http would send them) through h and
// returns the response. It fails tb when the handler ignored a ResponseWriter error, and stops
// the test when there is not exactly one response.
func Do(tb testing.TB, h rhttp.Handler, req *nethttp.Request) *Response {
	tb.Helper()
	if req == nil {
		tb.Fatal("rhttptest: nil request")
	}
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		tb.Fatalf("rhttptest: serializing the request: %v", err)
	}
	resps := DoRaw(tb, h, buf.String())
	if len(resps) != 1 {
		tb.Fatalf("rhttptest: %d responses to one request", len(resps))
	}
	return resps[0]
}
