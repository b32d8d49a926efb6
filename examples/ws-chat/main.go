// Command ws-chat is a chat room: a browser page and the WebSocket endpoint it talks to,
// served by one program on reactord's event loops. Every message a member sends is broadcast to
// the whole room with one encoded frame (websocket.Group), each loop writing it to its own
// members.
//
//	go run ./examples/ws-chat -addr 127.0.0.1:8000
//	open http://127.0.0.1:8000/ in two browser tabs
//
// The page is index.html, embedded in the binary. The endpoint is /ws?name=alice.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/codec/websocket"
	"github.com/reactord/reactord/reactor"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "TCP address to listen on (port 0 picks a free port)")
	loops := flag.Int("loops", 0, "number of event loops (0 = GOMAXPROCS)")
	flag.Parse()
	if err := run(*addr, *loops); err != nil {
		fmt.Fprintln(os.Stderr, "ws-chat:", err)
		os.Exit(1)
	}
}

// chat is the room. Its callbacks run on the members' loops, concurrently when there are
// several loops: the Group is safe from any goroutine, and a member's name lives in its
// connection's context.
type chat struct {
	room   *websocket.Group
	guests atomic.Int64
}

func (ch *chat) OnOpen(c *websocket.Conn) {
	ch.room.Add(c)
	ch.say(nil, fmt.Sprintf("* %s joined (%d here)", name(c), ch.room.Len()))
}

func (ch *chat) OnMessage(c *websocket.Conn, typ websocket.MessageType, data []byte) {
	if typ != websocket.Text {
		c.Close(websocket.CloseUnsupportedData, "text messages only")
		return
	}
	// data is valid only during the call; Broadcast copies what it is given.
	var buf [512]byte
	ch.say(append(append(append(buf[:0], name(c)...), ": "...), data...), "")
}

func (ch *chat) OnClose(c *websocket.Conn, err error) {
	// The connection has left the room by itself.
	ch.say(nil, fmt.Sprintf("* %s left (%d here)", name(c), ch.room.Len()))
}

// say broadcasts msg (or text) to the room.
func (ch *chat) say(msg []byte, text string) {
	if msg == nil {
		msg = []byte(text)
	}
	ch.room.Broadcast(websocket.Text, msg)
}

func name(c *websocket.Conn) string {
	s, _ := c.Context().(string)
	return s
}

// nameFrom returns the name= parameter of the query if it is a plain short name, else a guest
// name.
func (ch *chat) nameFrom(query []byte) string {
	for len(query) > 0 {
		var pair []byte
		pair, query = cut(query, '&')
		k, v := cut(pair, '=')
		if string(k) == "name" && plainName(v) {
			return string(v)
		}
	}
	return "guest-" + strconv.FormatInt(ch.guests.Add(1), 10)
}

func plainName(v []byte) bool {
	if len(v) == 0 || len(v) > 20 {
		return false
	}
	for _, c := range v {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func cut(b []byte, sep byte) (before, after []byte) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

func run(addr string, loops int) error {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	ch := &chat{room: websocket.NewGroup()}
	u, err := websocket.NewUpgrader(ch,
		websocket.WithMaxMessageSize(4096),
		websocket.WithKeepalive(30*time.Second, 10*time.Second),
		websocket.WithCompression(websocket.Compression{}),
	)
	if err != nil {
		return err
	}
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		switch string(r.Path()) {
		case "/":
			w.Set("Content-Type", "text/html; charset=utf-8")
			w.SetContentLength(int64(len(page)))
			w.Write(page)
		case "/ws":
			c, err := u.Upgrade(w, r) // 101, or the error status for a bad handshake
			if err == nil {
				c.SetContext(ch.nameFrom(r.Query())) // before OnOpen: same loop, same call
			}
		default:
			w.SetStatus(404)
			w.WriteString("not found\n")
		}
	}), rhttp.WithServerName("ws-chat"), rhttp.WithReactorOptions(reactor.WithLoops(loops)))
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
	fmt.Printf("listening on %s (open http://%s/ in a browser)\n", bound, bound)
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
	fmt.Printf("relayed %d messages from %d members\n", u.Stats().MessagesIn, u.Stats().Upgrades)
	return nil
}
