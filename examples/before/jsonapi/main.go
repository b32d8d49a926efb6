// Command jsonapi (before) is examples/jsonapi written with only the API reactord had before
// the embedder helpers: routing, 404, 405 with Allow, HEAD and the start/shutdown plumbing are
// hand-written, and the codec's own error responses stay text/plain. docs/EMBEDDING.md
// compares the two; examples_test.go drives both with the same client.
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
	"strings"
	"sync"
	"syscall"
	"time"

	rhttp "github.com/reactord/reactord/codec/http"
)

type todo struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
}

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
	a := &api{todos: make(map[int]todo), next: 1}
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(a.handle))
	if err != nil {
		return err
	}
	bound, err := srv.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", bound)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, rhttp.ErrServerClosed) {
		return err
	}
	fmt.Printf("served %d requests\n", srv.Stats().Requests)
	return nil
}

func (a *api) handle(w *rhttp.ResponseWriter, r *rhttp.Request) {
	method := r.MethodString()
	if method == "HEAD" {
		method = "GET" // the writer drops the body of a HEAD response
	}
	path := string(r.Path())
	switch {
	case path == "/todos":
		switch method {
		case "GET":
			a.list(w)
		case "POST":
			a.create(w, r.Body())
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
		}
	case strings.HasPrefix(path, "/todos/"):
		id, err := strconv.Atoi(path[len("/todos/"):])
		if err != nil || id <= 0 {
			writeError(w, 404, "not found")
			return
		}
		switch method {
		case "GET":
			a.get(w, id)
		case "DELETE":
			a.delete(w, id)
		default:
			methodNotAllowed(w, "GET, HEAD, DELETE")
		}
	default:
		writeError(w, 404, "not found")
	}
}

func methodNotAllowed(w *rhttp.ResponseWriter, allow string) {
	w.Set("Allow", allow)
	writeError(w, 405, "method not allowed")
}

func (a *api) list(w *rhttp.ResponseWriter) {
	a.mu.Lock()
	list := make([]todo, 0, len(a.todos))
	for _, t := range a.todos {
		list = append(list, t)
	}
	a.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	writeJSON(w, 200, list)
}

func (a *api) create(w *rhttp.ResponseWriter, body []byte) {
	var t todo
	if err := json.Unmarshal(body, &t); err != nil || t.Title == "" {
		writeError(w, 400, "want a JSON object with a non-empty title")
		return
	}
	a.mu.Lock()
	t.ID, a.next = a.next, a.next+1
	a.todos[t.ID] = t
	a.mu.Unlock()
	writeJSON(w, 201, t)
}

func (a *api) get(w *rhttp.ResponseWriter, id int) {
	a.mu.Lock()
	t, ok := a.todos[id]
	a.mu.Unlock()
	if !ok {
		writeError(w, 404, "not found")
		return
	}
	writeJSON(w, 200, t)
}

func (a *api) delete(w *rhttp.ResponseWriter, id int) {
	a.mu.Lock()
	_, ok := a.todos[id]
	delete(a.todos, id)
	a.mu.Unlock()
	if !ok {
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
