// Command ws-echo is a WebSocket echo server on the event loop: every message comes back with
// its type, fragments joined, compressed if the client negotiated permessage-deflate. It is the
// conformance target of codec/websocket's tests (gorilla/websocket, coder/websocket, node's
// ws and Python's websockets drive it) and of any Autobahn-style client.
//
//	go run ./examples/ws-echo -addr 127.0.0.1:9001
//	python3 -m websockets ws://127.0.0.1:9001/      # Debian's python3-websockets
//
// A plain HTTP request (no Upgrade header) gets a line of text; a malformed handshake gets the
// status RFC 6455 calls for (400, 405, 426).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/codec/websocket"
	"github.com/reactord/reactord/reactor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "TCP address to listen on (port 0 picks a free port)")
	loops := flag.Int("loops", 0, "number of event loops (0 = GOMAXPROCS)")
	maxMsg := flag.Int("max", 16<<20, "largest message accepted, in bytes (larger: close 1009)")
	compress := flag.Bool("compress", true, "accept permessage-deflate")
	keepalive := flag.Duration("keepalive", 0, "ping connections silent for this long (0: off)")
	flag.Parse()
	if err := run(*addr, *loops, *maxMsg, *compress, *keepalive); err != nil {
		fmt.Fprintln(os.Stderr, "ws-echo:", err)
		os.Exit(1)
	}
}

// echo is the whole application: OnMessage gets a view valid for the call, and Send copies it
// into the connection's output. No allocation per message.
var echo = websocket.HandlerFuncs{
	Message: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
		c.Send(typ, data)
	},
}

func run(addr string, loops, maxMsg int, compress bool, keepalive time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	opts := []websocket.Option{websocket.WithMaxMessageSize(maxMsg), websocket.WithKeepalive(keepalive, 0)}
	if compress {
		opts = append(opts, websocket.WithCompression(websocket.Compression{}))
	}
	u, err := websocket.NewUpgrader(echo, opts...)
	if err != nil {
		return err
	}
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		if _, ok := r.Header("Upgrade"); !ok {
			w.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteString("ws-echo: connect with a WebSocket client; every message is echoed\n")
			return
		}
		u.Upgrade(w, r) // 101, or the error status for a bad handshake
	}), rhttp.WithServerName("ws-echo"), rhttp.WithReactorOptions(reactor.WithLoops(loops)))
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
	fmt.Printf("listening on %s (ws://%s/, compression %v, max message %d bytes)\n", bound, bound, compress, maxMsg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Println("shutting down")
	// WebSocket connections first: close 1001 and wait a little for the peers' answers (the
	// ones that do not answer in time are closed without), then HTTP.
	wsCtx, cancelWS := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelWS()
	if err := u.Shutdown(wsCtx); err != nil {
		fmt.Printf("websocket shutdown: %v: %d connections closed without their answer\n", err, u.Stats().Open)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, rhttp.ErrServerClosed) {
		return err
	}
	st := u.Stats()
	fmt.Printf("echoed %d messages on %d connections\n", st.MessagesIn, st.Upgrades)
	return nil
}
