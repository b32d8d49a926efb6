// Command jsonapi is a small JSON API (a to-do list) on the codec's native handler API:
//
//	GET    /todos        the list
//	POST   /todos        {"title": "..."} creates one (201)
//	GET    /todos/{id}   one (404 if absent)
//	DELETE /todos/{id}   deletes one (204)
//
// codec/http/router routes it (404, 405 with Allow, HEAD and OPTIONS come with it), every
// error is JSON — the router's 404 and 405 as well as the codec's own answers to malformed
// requests (WithErrorBody) — and Run does the start and the graceful shutdown.
// examples/before/jsonapi is the same service without those helpers; main_test.go tests the
// handlers with rhttptest, no socket needed.
//
//	go run ./examples/jsonapi
//	curl -d '{"title":"write docs"}' http://127.0.0.1:8080/todos
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/codec/http/router"
)

type todo struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
}

// api is shared by every loop; the handlers hold its lock only around map operations.
type api struct {
	mu    sync.Mutex
	todos map[int]todo
	next  int
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "jsonapi:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt, err := newAPI().routes()
	if err != nil {
		return err
	}
	srv, err := rhttp.NewServer(rt, rhttp.WithErrorBody(errorBody))
	if err != nil {
		return err
	}
	bound, err := srv.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", bound)
	if err := srv.Run(ctx, 5*time.Second); err != nil {
		return err
	}
	fmt.Printf("served %d requests\n", srv.Stats().Requests)
	return nil
}

func newAPI() *api { return &api{todos: make(map[int]todo), next: 1} }

func (a *api) routes() (*router.Router, error) {
	rt := router.New()
	rt.SetNotFound(func(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) { writeError(w, 404, "not found") })
	rt.SetMethodNotAllowed(func(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
		writeError(w, 405, "method not allowed")
	})
	return rt, errors.Join(
		rt.Add("GET", "/todos", a.list),
		rt.Add("POST", "/todos", a.create),
		rt.Add("GET", "/todos/{id}", a.get),
		rt.Add("DELETE", "/todos/{id}", a.delete),
	)
}

// errorBody formats the codec's own error responses (400, 408, 413, 431, ...) as JSON.
func errorBody(dst []byte, err *rhttp.ParseError) ([]byte, string) {
	b, _ := json.Marshal(map[string]string{"error": err.Reason})
	return append(dst, b...), "application/json"
}

func (a *api) list(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
	a.mu.Lock()
	list := make([]todo, 0, len(a.todos))
	for _, t := range a.todos {
		list = append(list, t)
	}
	a.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	writeJSON(w, 200, list)
}

func (a *api) create(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
	var t todo
	if err := json.Unmarshal(r.Body(), &t); err != nil || t.Title == "" {
		writeError(w, 400, "want a JSON object with a non-empty title")
		return
	}
	a.mu.Lock()
	t.ID, a.next = a.next, a.next+1
	a.todos[t.ID] = t
	a.mu.Unlock()
	writeJSON(w, 201, t)
}

func (a *api) get(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
	id, err := strconv.Atoi(string(p.Get("id")))
	a.mu.Lock()
	t, ok := a.todos[id]
	a.mu.Unlock()
	if err != nil || !ok {
		writeError(w, 404, "not found")
		return
	}
	writeJSON(w, 200, t)
}

func (a *api) delete(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
	id, err := strconv.Atoi(string(p.Get("id")))
	a.mu.Lock()
	_, ok := a.todos[id]
	delete(a.todos, id)
	a.mu.Unlock()
	if err != nil || !ok {
		writeError(w, 404, "not found")
		return
	}
	w.SetStatus(204)
}

func writeJSON(w *rhttp.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":"internal error"}`)
	}
	w.SetStatus(status)
	w.Set("Content-Type", "application/json")
	w.Write(b)
}

func writeError(w *rhttp.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
