package http_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	nethttp "net/http"
	"time"

	rhttp "github.com/reactord/reactord/codec/http"
)

// ExampleWithErrorBody gives the codec's own error responses a JSON API's format. The request
// below has no Host header, so the codec answers 400 itself; the handler never runs.
func ExampleWithErrorBody() {
	jsonErrors := func(dst []byte, err *rhttp.ParseError) ([]byte, string) {
		return fmt.Appendf(dst, `{"error":%q,"status":%d}`, err.Reason, err.Status), "application/json"
	}
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {}),
		rhttp.WithErrorBody(jsonErrors))
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

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(conn, "GET / HTTP/1.1\r\n\r\n")
	resp, err := nethttp.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	conn.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), string(body))
	cancel()
	<-done
	// Output:
	// 400 application/json {"error":"missing Host header","status":400}
}

// ExampleResponseWriter_Err shows the error a handler may have ignored: here a header set
// after the body was flushed.
func ExampleResponseWriter_Err() {
	p, _ := rhttp.NewParser(rhttp.Limits{})
	_, req, _ := p.Parse([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	var w rhttp.ResponseWriter
	w.Begin(nil, req)
	w.WriteString("streaming...")
	w.Flush()
	w.Set("X-Too-Late", "1") // the head is already written: ErrHeadersSent, easy to miss
	w.Finish()
	fmt.Println(w.Err())
	// Output:
	// http: ResponseWriter.Set: http: headers already written
}
