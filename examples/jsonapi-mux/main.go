// Command jsonapi-mux is examples/jsonapi written for net/http: the same to-do API on an
// http.ServeMux with method and wildcard patterns, run unchanged through the codec's adapter
// (its handlers run on a worker pool, so they may block). The codec's own answers to
// malformed requests are JSON too (WithErrorBody), and Run does the start and the graceful
// shutdown. examples/before/jsonapi-mux is the same service without those helpers.
//
// chi (or any http.Handler router) would plug in the same way, as rhttp.Adapt(r); this example
// uses the standard library's ServeMux so the module needs no router dependency.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
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
		fmt.Fprintln(os.Stderr, "jsonapi-mux:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &api{todos: make(map[int]todo), next: 1}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /todos", a.list)
	mux.HandleFunc("POST /todos", a.create)
	mux.HandleFunc("GET /todos/{id}", a.get)
	mux.HandleFunc("DELETE /todos/{id}", a.delete)
	srv, err := rhttp.NewServer(rhttp.Adapt(mux), rhttp.WithErrorBody(errorBody))
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

// errorBody formats the codec's own error responses (400, 408, 413, 431, ...) as JSON.
func errorBody(dst []byte, err *rhttp.ParseError) ([]byte, string) {
	b, _ := json.Marshal(map[string]string{"error": err.Reason})
	return append(dst, b...), "application/json"
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	list := make([]todo, 0, len(a.todos))
	for _, t := range a.todos {
		list = append(list, t)
	}
	a.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	writeJSON(w, 200, list)
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	var t todo
	if err := json.NewDecoder(r.Body).Decode(&t); err != nil || t.Title == "" {
		writeError(w, 400, "want a JSON object with a non-empty title")
		return
	}
	a.mu.Lock()
	t.ID, a.next = a.next, a.next+1
	a.todos[t.ID] = t
	a.mu.Unlock()
	writeJSON(w, 201, t)
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	a.mu.Lock()
	t, ok := a.todos[id]
	a.mu.Unlock()
	if err != nil || !ok {
		writeError(w, 404, "not found")
		return
	}
	writeJSON(w, 200, t)
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	a.mu.Lock()
	_, ok := a.todos[id]
	delete(a.todos, id)
	a.mu.Unlock()
	if err != nil || !ok {
		writeError(w, 404, "not found")
		return
	}
	w.WriteHeader(204)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
