// Package compat checks that third-party net/http code runs unchanged on reactord's net/http
// adapter (codec/http.Adapt): gorilla/websocket and coder/websocket servers, each tested with
// its own client. It is a module of its own so that those libraries are test dependencies of
// this module only, never of reactord's main module (whose dependencies stay few); `.ci/run`
// runs it with `go test -race ./...` from this directory.
package compat
