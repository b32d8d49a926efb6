package websocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

func gorillaDial(t testing.TB, addr string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
	if err != nil {
		t.Fatalf("gorilla dial: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(testsupport.Scale(20 * time.Second)))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKeepalive(t *testing.T) {
	rec := newRecorder(false)
	every, wait := testsupport.Scale(50*time.Millisecond), testsupport.Scale(300*time.Millisecond)
	ts := startWS(t, rec, []Option{WithKeepalive(every, wait)})
	rc, _ := dialRaw(t, ts.addr, "")
	// A silent client is pinged; answering keeps the connection, twice over.
	for range 2 {
		f := rc.mustRead()
		if f.op != opPing {
			t.Fatalf("op %d, want a keepalive ping", f.op)
		}
		rc.send(true, opPong, f.payload)
	}
	// Then it stops answering: the server closes without a close frame.
	if f := rc.mustRead(); f.op != opPing {
		t.Fatalf("op %d, want a ping", f.op)
	}
	rc.expectEOF()
	if err := rec.waitClosed(t); !errors.Is(err, ErrPongTimeout) {
		t.Fatalf("OnClose(%v), want ErrPongTimeout", err)
	}
}

func TestKeepaliveQuietWhileBusy(t *testing.T) {
	// A connection that keeps sending is never pinged.
	every := testsupport.Scale(100 * time.Millisecond)
	ts := startWS(t, echoHandler, []Option{WithKeepalive(every, every)})
	rc, _ := dialRaw(t, ts.addr, "")
	deadline := time.Now().Add(3 * every)
	for time.Now().Before(deadline) {
		rc.send(true, opText, []byte("busy"))
		rc.expectMessage(opText, []byte("busy")) // a ping here would fail the read
	}
	rc.closeNormally()
}

func TestServerClose(t *testing.T) {
	rec := &recorder{closed: make(chan error, 1), opened: make(chan *Conn, 1)}
	h := HandlerFuncs{
		Message: func(c *Conn, typ MessageType, data []byte) {
			if string(data) == "close" {
				c.Close(4000, "done")
				if err := c.SendText("after close"); !errors.Is(err, ErrClosed) {
					panic(fmt.Sprint("Send after Close: ", err))
				}
				return
			}
			rec.OnMessage(c, typ, data)
		},
		Close: rec.OnClose,
	}
	ts := startWS(t, h, nil)
	rc, _ := dialRaw(t, ts.addr, "")
	rc.send(true, opText, []byte("close"))
	// The client says more before it sees the close frame: not delivered any more.
	rc.send(true, opText, []byte("late"))
	f := rc.mustRead()
	if f.op != opClose || binary.BigEndian.Uint16(f.payload) != 4000 || string(f.payload[2:]) != "done" {
		t.Fatalf("got op %d %q, want close 4000 done", f.op, f.payload)
	}
	rc.send(true, opClose, closePayload(4000, ""))
	rc.expectEOF()
	err := rec.waitClosed(t)
	if ce, ok := err.(*CloseError); !ok || ce.Code != 4000 || ce.Reason != "done" || ce.Remote {
		t.Fatalf("OnClose(%v), want the server's close 4000", err)
	}
	if msgs := rec.messages(); len(msgs) != 0 {
		t.Fatalf("messages delivered after Close: %v", msgs)
	}
}

func TestCloseTimeout(t *testing.T) {
	rec := newRecorder(false)
	ts := startWS(t, rec, []Option{WithCloseTimeout(testsupport.Scale(100 * time.Millisecond))})
	rc, _ := dialRaw(t, ts.addr, "")
	c := rec.waitOpened(t)
	if err := c.Close(CloseNormal, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(CloseNormal, ""); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
	if f := rc.mustRead(); f.op != opClose {
		t.Fatalf("op %d, want close", f.op)
	}
	rc.expectEOF() // never answered: closed after the timeout
	if err := rec.waitClosed(t); !errors.Is(err, ErrCloseTimeout) {
		t.Fatalf("OnClose(%v), want ErrCloseTimeout", err)
	}
}

func TestSendArguments(t *testing.T) {
	rec := newRecorder(false)
	ts := startWS(t, rec, nil)
	rc, _ := dialRaw(t, ts.addr, "")
	c := rec.waitOpened(t)
	checks := []struct {
		name string
		err  error
		want error
	}{
		{"bad type", c.Send(7, nil), ErrInvalidArgument},
		{"invalid text", c.Send(Text, []byte{0xff}), ErrInvalidUTF8},
		{"invalid SendText", c.SendText("\xed\xa0\x80"), ErrInvalidUTF8},
		{"ping too long", c.Ping(make([]byte, 126)), ErrInvalidArgument},
		{"close 1005", c.Close(CloseNoStatus, ""), ErrInvalidArgument},
		{"close 1006", c.Close(CloseAbnormal, ""), ErrInvalidArgument},
		{"close 2000", c.Close(2000, ""), ErrInvalidArgument},
		{"close reason too long", c.Close(CloseNormal, strings.Repeat("x", 124)), ErrInvalidArgument},
		{"close reason invalid", c.Close(CloseNormal, "\xff"), ErrInvalidUTF8},
		{"SendWait nil context", c.SendWait(nilContext(), Text, nil), ErrInvalidArgument},
		{"valid binary", c.Send(Binary, []byte{0xff}), nil},
		{"valid ping", c.Ping([]byte("p")), nil},
	}
	for _, ch := range checks {
		if !errors.Is(ch.err, ch.want) || (ch.want == nil) != (ch.err == nil) {
			t.Errorf("%s: %v, want %v", ch.name, ch.err, ch.want)
		}
	}
	rc.expectMessage(opBinary, []byte{0xff})
	rc.expectMessage(opPing, []byte("p"))
	c.Close(CloseNormal, "")
	if err := c.SendText("late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	if err := c.Ping(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
	rc.expectClose(CloseNormal)
}

// TestSendFromManyGoroutines: Send is safe from any goroutine, each message leaves whole, and
// the messages of one goroutine keep their order.
func TestSendFromManyGoroutines(t *testing.T) {
	rec := newRecorder(false)
	ts := startWS(t, rec, nil, reactor.WithLoops(2))
	ws := gorillaDial(t, ts.addr)
	c := rec.waitOpened(t)
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := c.SendText(fmt.Sprintf("%d %d %s", g, i, strings.Repeat("x", i))); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		}()
	}
	next := make([]int, senders)
	for range senders * each {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var g, i int
		var pad string
		fmt.Sscanf(string(msg), "%d %d %s", &g, &i, &pad)
		if i != next[g] || len(pad) != i && i != 0 {
			t.Fatalf("sender %d: message %d (pad %d), want %d", g, i, len(pad), next[g])
		}
		next[g]++
	}
	wg.Wait()
}

// nilContext returns a nil context (for the argument check) without tripping the linters.
func nilContext() context.Context { return nil }

// slowClient connects with a small receive buffer and reads nothing until told to.
func slowClient(t *testing.T, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{Control: nil}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetReadBuffer(128 << 10)
	t.Cleanup(func() { conn.Close() })
	rc := &rawClient{t: t, c: conn, br: newReader(conn), key: 0x01020304}
	conn.SetDeadline(time.Now().Add(testsupport.Scale(30 * time.Second)))
	rc.write([]byte(handshakeRequest("")))
	if line, err := rc.br.ReadString('\n'); err != nil || !strings.Contains(line, "101") {
		t.Fatalf("handshake: %q %v", line, err)
	}
	for {
		line, err := rc.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	return rc
}

// syncLoop waits until the connection's loop has run what was posted to it so far.
func syncLoop(t testing.TB, c *Conn) {
	t.Helper()
	done := make(chan struct{})
	if err := c.Loop().Post(func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}

func TestSlowConsumerDrop(t *testing.T) {
	const limit = 256 << 10
	rec := newRecorder(false)
	ts := startWS(t, rec, []Option{WithSendLimit(limit)}, reactor.WithSocketBuffers(0, 128<<10), reactor.WithWatermarks(limit, 0))
	rc := slowClient(t, ts.addr)
	c := rec.waitOpened(t)
	msg := bytes.Repeat([]byte("m"), 16<<10)
	sent := 0
	for ; sent < 1000; sent++ {
		err := c.Send(Binary, msg)
		if errors.Is(err, ErrOutputFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Let the loop hand the message to the reactor connection before the next one, so
		// the queue for the loop never nears the send limit: what fills up is the reactor
		// connection's output, above its high-water mark.
		syncLoop(t, c)
	}
	if sent == 1000 {
		t.Fatal("16 MB queued for a client that reads nothing: the send limit did not apply")
	}
	if st := ts.u.Stats(); st.Dropped == 0 {
		t.Fatalf("stats %+v: no drop counted", st)
	}
	// Everything accepted arrives; then the connection works again.
	for i := range sent {
		if f := rc.mustRead(); len(f.payload) != len(msg) {
			t.Fatalf("message %d: %d bytes", i, len(f.payload))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
	defer cancel()
	if err := c.SendWait(ctx, Text, []byte("again")); err != nil {
		t.Fatal(err)
	}
	rc.expectMessage(opText, []byte("again"))
}

func TestSlowConsumerClose(t *testing.T) {
	rec := newRecorder(false)
	ts := startWS(t, rec, []Option{WithSendLimit(64 << 10), WithSlowConsumerPolicy(SlowConsumerClose)}, reactor.WithSocketBuffers(0, 128<<10), reactor.WithWatermarks(64<<10, 0))
	rc := slowClient(t, ts.addr)
	c := rec.waitOpened(t)
	msg := bytes.Repeat([]byte("m"), 8<<10)
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = c.Send(Binary, msg)
	}
	if !errors.Is(err, ErrOutputFull) {
		t.Fatalf("Send: %v, want ErrOutputFull", err)
	}
	if err := c.Send(Binary, msg); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after the policy closed: %v, want ErrClosed", err)
	}
	rc.expectClose(ClosePolicyViolation)
	if err := rec.waitClosed(t); !strings.Contains(fmt.Sprint(err), "1008") {
		t.Fatalf("OnClose(%v), want 1008", err)
	}
}

// TestSendWaitPaces: a producer goroutine using SendWait is paced by a slow reader and loses
// nothing; on the loop SendWait refuses to block.
func TestSendWaitPaces(t *testing.T) {
	const limit = 64 << 10
	onLoop := make(chan error, 1)
	rec := newRecorder(false)
	h := HandlerFuncs{
		Open: rec.OnOpen,
		Message: func(c *Conn, typ MessageType, data []byte) {
			// On the loop: fill up to the limit, then SendWait must refuse to wait.
			ctx := context.Background()
			for {
				if err := c.SendWait(ctx, Binary, make([]byte, 8<<10)); err != nil {
					onLoop <- err
					return
				}
			}
		},
	}
	ts := startWS(t, h, []Option{WithSendLimit(limit)}, reactor.WithSocketBuffers(0, 128<<10), reactor.WithWatermarks(limit, 0))
	rc := slowClient(t, ts.addr)
	c := rec.waitOpened(t)
	const n = 200
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(20*time.Second))
		defer cancel()
		for i := range n {
			if err := c.SendWait(ctx, Binary, binary.BigEndian.AppendUint32(make([]byte, 0, 16<<10), uint32(i))[:16<<10]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		f := rc.mustRead()
		if got := binary.BigEndian.Uint32(f.payload); got != uint32(i) {
			t.Fatalf("message %d carries %d", i, got)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("SendWait: %v", err)
	}
	if st := ts.u.Stats(); st.Dropped != 0 {
		t.Fatalf("SendWait dropped messages: %+v", st)
	}
	rc.send(true, opText, []byte("fill"))
	if err := <-onLoop; !errors.Is(err, ErrCalledOnLoop) {
		t.Fatalf("SendWait on the loop: %v, want ErrCalledOnLoop", err)
	}
}

// TestBackpressurePausesReading: a client that sends without reading the echoes gets paced:
// the server stops reading it instead of queueing the echoes without bound, and nothing is
// dropped.
func TestBackpressurePausesReading(t *testing.T) {
	ts := startWS(t, echoHandler, nil, reactor.WithSocketBuffers(128<<10, 128<<10), reactor.WithWatermarks(64<<10, 0))
	rc := slowClient(t, ts.addr)
	msg := rc.frame(true, 0, opBinary, bytes.Repeat([]byte("e"), 1000), true)
	const n = 20000 // 20 MB: far more than the buffers on both sides
	rc.c.SetWriteDeadline(time.Now().Add(testsupport.Scale(500 * time.Millisecond)))
	written, partial := 0, 0
	for ; written < n; written++ {
		if k, err := rc.c.Write(msg); err != nil {
			partial = k // the server stopped reading: the client's writes block
			break
		}
	}
	if written == n {
		t.Fatal("the server read 20 MB from a client that reads no echo")
	}
	// What the server took is bounded by its buffers, not by what the client sent.
	if in := ts.u.Stats().MessagesIn; in > 2000 {
		t.Fatalf("%d messages handled while the echoes were not read: memory not bounded", in)
	}
	rc.c.SetWriteDeadline(time.Time{})
	go func() {
		if _, err := rc.c.Write(msg[partial:]); err != nil {
			return
		}
		for i := written + 1; i < n; i++ {
			if _, err := rc.c.Write(msg); err != nil {
				return
			}
		}
	}()
	for i := range n - 1 {
		f, err := rc.read()
		if err != nil || len(f.payload) != 1000 {
			t.Fatalf("echo %d: %v %d bytes; %+v", i, err, len(f.payload), ts.u.Stats())
		}
	}
	if st := ts.u.Stats(); st.Dropped != 0 {
		t.Fatalf("echoes dropped: %+v", st)
	}
}

func TestGroupBroadcast(t *testing.T) {
	g := NewGroup()
	h := HandlerFuncs{Open: func(c *Conn) {
		if err := g.Add(c); err != nil {
			panic(err)
		}
		if err := g.Add(c); err != nil { // twice does nothing
			panic(err)
		}
	}}
	ts := startWS(t, h, nil, reactor.WithLoops(3))
	const n = 30
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		clients[i] = gorillaDial(t, ts.addr)
	}
	testsupport.Eventually(t, 0, "all clients in the group", func() bool { return g.Len() == n })
	for i := range 10 {
		if err := g.Broadcast(Text, []byte(fmt.Sprint("news ", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.u.Broadcast(Binary, []byte("to all")); err != nil {
		t.Fatal(err)
	}
	for k, c := range clients {
		for i := range 10 {
			_, msg, err := c.ReadMessage()
			if err != nil || string(msg) != fmt.Sprint("news ", i) {
				t.Fatalf("client %d message %d: %q %v", k, i, msg, err)
			}
		}
		if typ, msg, err := c.ReadMessage(); err != nil || typ != websocket.BinaryMessage || string(msg) != "to all" {
			t.Fatalf("client %d: Upgrader.Broadcast: %d %q %v", k, typ, msg, err)
		}
	}
	// Closed connections leave the group by themselves.
	for _, c := range clients[:10] {
		c.Close()
	}
	testsupport.Eventually(t, 0, "closed clients out of the group", func() bool { return g.Len() == n-10 })
	if err := g.Broadcast(Text, []byte{0xff}); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("Broadcast of invalid text: %v", err)
	}
	if err := g.Add(nil); err == nil {
		t.Fatal("Add(nil) succeeded")
	}
}

func TestShutdown(t *testing.T) {
	rec := newRecorder(true)
	ts := startWS(t, rec, nil, reactor.WithLoops(2))
	var clients []*websocket.Conn
	for range 5 {
		clients = append(clients, gorillaDial(t, ts.addr))
	}
	ts.waitOpen(t, 5)
	errs := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			_, _, err := c.ReadMessage() // gorilla answers the close frame itself
			errs <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
	defer cancel()
	if err := ts.u.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range clients {
		if err := <-errs; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("client saw %v, want close 1001", err)
		}
	}
	if st := ts.u.Stats(); st.Open != 0 {
		t.Fatalf("open after Shutdown: %+v", st)
	}
	// New handshakes are refused.
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+ts.addr+"/", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("handshake after Shutdown: %v %v, want 503", resp, err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	rec := newRecorder(false)
	ts := startWS(t, rec, []Option{WithCloseTimeout(time.Hour)})
	rc, _ := dialRaw(t, ts.addr, "") // never answers the close frame
	ts.waitOpen(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(100*time.Millisecond))
	defer cancel()
	if err := ts.u.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	rc.expectClose(CloseGoingAway)
	ts.waitOpen(t, 0)
}

func TestHandlerPanic(t *testing.T) {
	rec := newRecorder(false)
	h := HandlerFuncs{
		Message: func(c *Conn, typ MessageType, data []byte) {
			if string(data) == "boom" {
				panic("boom")
			}
			c.Send(typ, data)
		},
		Close: rec.OnClose,
	}
	ts := startWS(t, h, nil)
	other, _ := dialRaw(t, ts.addr, "")
	rc, _ := dialRaw(t, ts.addr, "")
	rc.send(true, opText, []byte("boom"))
	rc.expectClose(CloseInternalError)
	if err := rec.waitClosed(t); !strings.Contains(fmt.Sprint(err), "1011") {
		t.Fatalf("OnClose(%v), want 1011", err)
	}
	// The loop and the other connections are unharmed.
	other.send(true, opText, []byte("still here"))
	other.expectMessage(opText, []byte("still here"))
}

func TestContextAndStats(t *testing.T) {
	rec := newRecorder(true)
	ts := startWS(t, rec, nil)
	rc, _ := dialRaw(t, ts.addr, "")
	c := rec.waitOpened(t)
	if c.Compressed() || c.Subprotocol() != "" || c.Loop() == nil {
		t.Fatalf("fresh connection: compressed %v, subprotocol %q, loop %v", c.Compressed(), c.Subprotocol(), c.Loop())
	}
	got := make(chan string, 1)
	c.Loop().Post(func() {
		c.SetContext("user-1")
		got <- fmt.Sprint(c.Context(), " ", c.RemoteAddr() != nil, " ", strings.HasPrefix(c.String(), "websocket 127.0.0.1:"))
	})
	if s := <-got; s != "user-1 true true" {
		t.Fatalf("context, address, name: %q", s)
	}
	for range 3 {
		rc.send(true, opText, []byte("x"))
		rc.expectMessage(opText, []byte("x"))
	}
	testsupport.Eventually(t, 0, "3 messages counted", func() bool { return ts.u.Stats().MessagesIn == 3 })
	if st := ts.u.Stats(); st.Open != 1 || st.Upgrades != 1 {
		t.Fatalf("stats %+v", st)
	}
	rc.closeNormally()
	if _, err := io.ReadAll(rc.br); err != nil {
		t.Fatal(err)
	}
}
