package router_test

import (
	"context"
	"fmt"
	"io"
	"log"
	nethttp "net/http"
	"strings"
	"time"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/codec/http/router"
)

// Example routes a small JSON API: a static route, a {param} route, method tables with the
// automatic 405 and Allow, and a 404 in the API's own format.
func Example() {
	rt := router.New()
	err := errors(
		rt.Add("GET", "/users", func(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
			w.Set("Content-Type", "application/json")
			w.WriteString(`[{"id":"1"}]`)
		}),
		rt.Add("GET", "/users/{id}", func(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
			w.Set("Content-Type", "application/json")
			w.WriteString(`{"id":"`)
			w.Write(p.Get("id")) // a view into the request path: valid during the call
			w.WriteString(`"}`)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	rt.SetNotFound(func(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
		w.Set("Content-Type", "application/json")
		w.WriteString(`{"error":"no such resource"}`)
	})

	srv, err := rhttp.NewServer(rt)
	if err != nil {
		log.Fatal(err)
	}
	addr, err := srv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()

	for _, req := range []string{"GET /users", "GET /users/42", "DELETE /users/42", "GET /nothing"} {
		method, path, _ := strings.Cut(req, " ")
		r, _ := nethttp.NewRequest(method, "http://"+addr.String()+path, nil)
		resp, err := nethttp.DefaultClient.Do(r)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s -> %d %s %s\n", req, resp.StatusCode, resp.Header.Get("Allow"), strings.TrimSpace(string(body)))
	}
	nethttp.DefaultClient.CloseIdleConnections()
	cancel()
	<-done
	// Output:
	// GET /users -> 200  [{"id":"1"}]
	// GET /users/42 -> 200  {"id":"42"}
	// DELETE /users/42 -> 405 GET, HEAD, OPTIONS Method Not Allowed
	// GET /nothing -> 404  {"error":"no such resource"}
}

// errors returns the first non-nil error: registration errors checked in one place.
func errors(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ExampleUnescape decodes a path parameter without allocating: an input with nothing encoded
// comes back as is, anything else is decoded into the scratch buffer given.
func ExampleUnescape() {
	scratch := make([]byte, 0, 64)
	for _, raw := range []string{"plain", "J%C3%BCrgen", "a%2Fb", "bad%zz"} {
		v, err := router.Unescape(scratch, []byte(raw))
		fmt.Printf("%s -> %q %v\n", raw, v, err)
	}
	// Output:
	// plain -> "plain" <nil>
	// J%C3%BCrgen -> "Jürgen" <nil>
	// a%2Fb -> "a/b" <nil>
	// bad%zz -> "" router: malformed percent-encoding
}

// ExampleQueryValue reads a query parameter as a view of the request, decoding it only when
// it is encoded.
func ExampleQueryValue() {
	query := []byte("q=hello+world&limit=10") // as Request.Query returns it
	var buf [64]byte
	if raw, ok := router.QueryValue(query, "q"); ok {
		v, err := router.UnescapeQuery(buf[:0], raw)
		fmt.Printf("q=%q %v\n", v, err)
	}
	limit, _ := router.QueryValue(query, "limit")
	_, ok := router.QueryValue(query, "page")
	fmt.Printf("limit=%s page present: %v\n", limit, ok)
	// Output:
	// q="hello world" <nil>
	// limit=10 page present: false
}
