package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reactord/reactord/codec/http/rhttptest"
)

// TestAPI drives the handlers through rhttptest: the codec's parser and writer, no socket.
func TestAPI(t *testing.T) {
	rt, err := newAPI().routes()
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		method, target, body string
		status               int
		want                 string
	}{
		{"GET", "/todos", "", 200, `[]`},
		{"POST", "/todos", `{"title":"write docs"}`, 201, `{"id":1,"title":"write docs","done":false}`},
		{"POST", "/todos", `{"title":""}`, 400, `{"error":"want a JSON object with a non-empty title"}`},
		{"GET", "/todos/1", "", 200, `{"id":1,"title":"write docs","done":false}`},
		{"GET", "/todos", "", 200, `[{"id":1,"title":"write docs","done":false}]`},
		{"PUT", "/todos/1", "", 405, `{"error":"method not allowed"}`},
		{"GET", "/todos/x", "", 404, `{"error":"not found"}`},
		{"DELETE", "/todos/1", "", 204, ``},
		{"DELETE", "/todos/1", "", 404, `{"error":"not found"}`},
		{"GET", "/elsewhere", "", 404, `{"error":"not found"}`},
	}
	for _, s := range steps {
		resp := rhttptest.Do(t, rt, httptest.NewRequest(s.method, s.target, strings.NewReader(s.body)))
		if resp.Status != s.status || string(resp.Body) != s.want {
			t.Errorf("%s %s = %d %s; want %d %s", s.method, s.target, resp.Status, resp.Body, s.status, s.want)
		}
		if s.status != 204 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q", s.method, s.target, resp.Header.Get("Content-Type"))
		}
	}
}
