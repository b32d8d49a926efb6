package servers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	nbws "github.com/lesismal/nbio/nbhttp/websocket"
	"github.com/lxzan/gws"

	rhttp "github.com/reactord/reactord/codec/http"
	rws "github.com/reactord/reactord/codec/websocket"
	"github.com/reactord/reactord/reactor"
)

// The WebSocket servers of `bench ws`. Every one upgrades any path, echoes every message with
// its type, and answers a message starting with BroadcastPrefix by sending the rest of it as a
// text message to every connection it holds (the sender included), in the way its library
// makes cheapest: our Upgrader.Broadcast (one encoded frame, one task per loop), gorilla's
// PreparedMessage, a frame compiled once for gobwas/ws, gws's Broadcaster, and a plain loop of
// writes for coder/websocket and nbio, whose APIs have nothing better. No compression.

// BroadcastPrefix starts a message that asks the server to broadcast the rest.
const BroadcastPrefix = "BROADCAST "

// WebSocket returns the WebSocket servers, ours first. They are not in All (the HTTP
// subcommands' list); Lookup finds them.
func WebSocket() []Server {
	return []Server{
		{Name: "ws-reactord", Description: "codec/websocket on codec/http's native handler (event loop)", UsesPoller: true, start: startWSReactord},
		{Name: "ws-gorilla", Description: "gorilla/websocket on net/http (goroutine per connection)", start: startWSGorilla},
		{Name: "ws-coder", Description: "coder/websocket on net/http (goroutine per connection)", start: startWSCoder},
		{Name: "ws-gobwas", Description: "gobwas/ws on net/http (goroutine per connection)", start: startWSGobwas},
		{Name: "ws-nbio", Description: "nbio's websocket on its nbhttp engine (event loops)", start: startWSNbio},
		{Name: "ws-gws", Description: "lxzan/gws on net/http (goroutine per connection)", start: startWSGws},
	}
}

// WebSocketNames returns the names of WebSocket, in order.
func WebSocketNames() []string {
	var out []string
	for _, s := range WebSocket() {
		out = append(out, s.Name)
	}
	return out
}

func broadcastPayload(p []byte) ([]byte, bool) {
	if bytes.HasPrefix(p, []byte(BroadcastPrefix)) {
		return p[len(BroadcastPrefix):], true
	}
	return nil, false
}

// httpInstance runs a net/http server for the goroutine-per-connection peers.
type httpInstance struct {
	srv  *http.Server
	addr string
	done chan error
	once sync.Once
	err  error
	stop func() // closes the library's connections
}

func serveHTTP(o Options, h http.Handler, stop func()) (Instance, error) {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	in := &httpInstance{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1), stop: stop}
	go func() { in.done <- srv.Serve(ln) }()
	return in, nil
}

func (n *httpInstance) Addr() string { return n.addr }
func (n *httpInstance) PID() int     { return os.Getpid() }

func (n *httpInstance) Close() error {
	n.once.Do(func() {
		n.err = n.srv.Close() // hijacked connections are the library's
		n.stop()
		if err := <-n.done; !errors.Is(err, http.ErrServerClosed) && n.err == nil {
			n.err = err
		}
	})
	return n.err
}

// registry holds a peer's connections for broadcast and for closing at the end.
type registry[C comparable] struct {
	mu    sync.RWMutex
	conns map[C]*sync.Mutex // the connection's write lock
}

func newRegistry[C comparable]() *registry[C] { return &registry[C]{conns: make(map[C]*sync.Mutex)} }

func (r *registry[C]) add(c C) *sync.Mutex {
	m := &sync.Mutex{}
	r.mu.Lock()
	r.conns[c] = m
	r.mu.Unlock()
	return m
}

func (r *registry[C]) remove(c C) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

func (r *registry[C]) each(f func(c C, wmu *sync.Mutex)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for c, m := range r.conns {
		f(c, m)
	}
}

// reactord: the Upgrader on the codec's native handler.

type wsReactordInstance struct {
	srv  *rhttp.Server
	addr string
}

func startWSReactord(_ context.Context, o Options) (Instance, error) {
	var u *rws.Upgrader
	h := rws.HandlerFuncs{Message: func(c *rws.Conn, typ rws.MessageType, data []byte) {
		if p, ok := broadcastPayload(data); ok {
			u.Broadcast(rws.Text, p)
			return
		}
		c.Send(typ, data)
	}}
	var err error
	u, err = rws.NewUpgrader(h, rws.WithOriginCheck(rws.AllowAnyOrigin), rws.WithMaxMessageSize(16<<20))
	if err != nil {
		return nil, err
	}
	ropts := []reactor.Option{reactor.WithLoops(o.Loops), reactor.WithLogger(o.Logger)}
	if o.Poller != "" {
		ropts = append(ropts, reactor.WithPoller(o.Poller))
	}
	srv, err := rhttp.NewServer(rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		u.Upgrade(w, r)
	}), rhttp.WithReactorOptions(ropts...), rhttp.WithLogger(o.Logger),
		// Idle WebSocket connections must stay: no HTTP timeouts apply after the upgrade,
		// and the handshake comes at once.
		rhttp.WithIdleTimeout(0))
	if err != nil {
		return nil, err
	}
	addr, err := srv.Listen("tcp", o.Addr)
	if err != nil {
		srv.Close()
		return nil, err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return nil, err
	}
	return &wsReactordInstance{srv: srv, addr: addr.String()}, nil
}

func (r *wsReactordInstance) Addr() string { return r.addr }
func (r *wsReactordInstance) PID() int     { return os.Getpid() }
func (r *wsReactordInstance) Close() error { return r.srv.Close() }

// gorilla/websocket: a reader goroutine per connection; writes under the connection's lock.

func startWSGorilla(_ context.Context, o Options) (Instance, error) {
	reg := newRegistry[*gorilla.Conn]()
	up := gorilla.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wmu := reg.add(c)
		defer func() {
			reg.remove(c)
			c.Close()
		}()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if p, ok := broadcastPayload(msg); ok {
				pm, err := gorilla.NewPreparedMessage(gorilla.TextMessage, p)
				if err != nil {
					return
				}
				reg.each(func(o *gorilla.Conn, m *sync.Mutex) {
					m.Lock()
					o.WritePreparedMessage(pm)
					m.Unlock()
				})
				continue
			}
			wmu.Lock()
			err = c.WriteMessage(typ, msg)
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	})
	return serveHTTP(o, h, func() {
		reg.each(func(c *gorilla.Conn, _ *sync.Mutex) { c.Close() })
	})
}

// coder/websocket: Write is safe for concurrent use; no broadcast helper.

func startWSCoder(_ context.Context, o Options) (Instance, error) {
	reg := newRegistry[*coder.Conn]()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, &coder.AcceptOptions{InsecureSkipVerify: true, CompressionMode: coder.CompressionDisabled})
		if err != nil {
			return
		}
		c.SetReadLimit(16 << 20)
		reg.add(c)
		defer func() {
			reg.remove(c)
			c.CloseNow()
		}()
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if p, ok := broadcastPayload(msg); ok {
				reg.each(func(o *coder.Conn, _ *sync.Mutex) { o.Write(ctx, coder.MessageText, p) })
				continue
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	})
	return serveHTTP(o, h, func() {
		reg.each(func(c *coder.Conn, _ *sync.Mutex) { c.CloseNow() })
	})
}

// gobwas/ws: the net/http upgrade and wsutil's helpers; a broadcast frame compiled once.

func startWSGobwas(_ context.Context, o Options) (Instance, error) {
	reg := newRegistry[net.Conn]()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		wmu := reg.add(c)
		go func() {
			defer func() {
				reg.remove(c)
				c.Close()
			}()
			for {
				msg, op, err := wsutil.ReadClientData(c)
				if err != nil {
					return
				}
				if p, ok := broadcastPayload(msg); ok {
					frame, err := ws.CompileFrame(ws.NewFrame(ws.OpText, true, p))
					if err != nil {
						return
					}
					reg.each(func(o net.Conn, m *sync.Mutex) {
						m.Lock()
						o.Write(frame)
						m.Unlock()
					})
					continue
				}
				wmu.Lock()
				err = wsutil.WriteServerMessage(c, op, msg)
				wmu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	})
	return serveHTTP(o, h, func() {
		reg.each(func(c net.Conn, _ *sync.Mutex) { c.Close() })
	})
}

// nbio: its own event-loop HTTP engine and websocket upgrader; writes are safe from any
// goroutine.

type wsNbioInstance struct {
	e    *nbhttp.Engine
	addr string
}

func startWSNbio(_ context.Context, o Options) (Instance, error) {
	// The engine listens by itself: find a free port first when asked for port 0.
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	// nbio logs to stdout, which is the harness's control channel.
	logging.SetLevel(logging.LevelNone)
	reg := newRegistry[*nbws.Conn]()
	up := nbws.NewUpgrader()
	up.CheckOrigin = func(*http.Request) bool { return true }
	up.OnOpen(func(c *nbws.Conn) { reg.add(c) })
	up.OnClose(func(c *nbws.Conn, err error) { reg.remove(c) })
	up.OnMessage(func(c *nbws.Conn, mt nbws.MessageType, data []byte) {
		if p, ok := broadcastPayload(data); ok {
			reg.each(func(o *nbws.Conn, _ *sync.Mutex) { o.WriteMessage(nbws.TextMessage, p) })
			return
		}
		c.WriteMessage(mt, data)
	})
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := up.Upgrade(w, r, nil); err != nil {
			return
		}
	})
	e := nbhttp.NewEngine(nbhttp.Config{Network: "tcp", Addrs: []string{addr}, NPoller: o.Loops, Handler: mux})
	if err := e.Start(); err != nil {
		return nil, fmt.Errorf("nbio: %w", err)
	}
	return &wsNbioInstance{e: e, addr: addr}, nil
}

func (n *wsNbioInstance) Addr() string { return n.addr }
func (n *wsNbioInstance) PID() int     { return os.Getpid() }
func (n *wsNbioInstance) Close() error {
	n.e.Stop()
	return nil
}

// lxzan/gws: a read loop goroutine per connection; its Broadcaster encodes once.

type gwsHandler struct {
	gws.BuiltinEventHandler
	reg *registry[*gws.Conn]
}

func (h *gwsHandler) OnOpen(c *gws.Conn)                 { h.reg.add(c) }
func (h *gwsHandler) OnClose(c *gws.Conn, err error)     { h.reg.remove(c) }
func (h *gwsHandler) OnPing(c *gws.Conn, payload []byte) { c.WritePong(payload) }

func (h *gwsHandler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	if p, ok := broadcastPayload(m.Bytes()); ok {
		b := gws.NewBroadcaster(gws.OpcodeText, p)
		h.reg.each(func(o *gws.Conn, _ *sync.Mutex) { b.Broadcast(o) })
		b.Close()
		return
	}
	c.WriteMessage(m.Opcode, m.Bytes())
}

func startWSGws(_ context.Context, o Options) (Instance, error) {
	h := &gwsHandler{reg: newRegistry[*gws.Conn]()}
	up := gws.NewUpgrader(h, &gws.ServerOption{ReadMaxPayloadSize: 16 << 20})
	hh := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	})
	return serveHTTP(o, hh, func() {
		h.reg.each(func(c *gws.Conn, _ *sync.Mutex) { c.NetConn().Close() })
	})
}
