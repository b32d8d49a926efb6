// Package examples holds small runnable programs that embed reactord's packages, one per
// directory, each a main package with a README: echo, framing, udp-broadcast, timers,
// http-hello, http-mux, kv, jsonapi, jsonapi-mux, ws-echo and ws-chat (and, under before/, kv,
// jsonapi and jsonapi-mux written without the embedder helpers, for comparison). Run one with
//
//	go run ./examples/echo
//
// Every example takes -addr, prints "listening on ADDR" once it serves, and shuts down
// gracefully on SIGINT or SIGTERM. examples_test.go builds each of them, drives it once on an
// ephemeral loopback port and checks that it exits with status 0; it runs as part of
// `go test ./...`.
//
// This package itself has no API.
package examples
