package compat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	gws "github.com/gorilla/websocket"
	"go.uber.org/goleak"

	rhttp "github.com/reactord/reactord/codec/http"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs h through the adapter on 127.0.0.1:0 and returns its address.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	s, err := rhttp.NewServer(rhttp.Adapt(h))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return addr.String()
}

// messages is what every client sends and expects back: small, large (several MiB, many
// frames) and empty, text and binary.
func messages() [][]byte {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	return [][]byte{[]byte("hello"), big, {}, []byte(strings.Repeat("é", 70000))}
}

// TestGorillaEcho: a gorilla/websocket server, unchanged, with gorilla's client: echo of small,
// large and explicitly fragmented messages, then the close handshake.
func TestGorillaEcho(t *testing.T) {
	closed := make(chan error, 1)
	up := gws.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			closed <- err
			return
		}
		defer c.Close()
		c.SetReadLimit(16 << 20)
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				closed <- err
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				closed <- err
				return
			}
		}
	}))
	d := gws.Dialer{HandshakeTimeout: 10 * time.Second, WriteBufferSize: 512}
	c, resp, err := d.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	c.SetReadLimit(16 << 20)
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for i, m := range messages() {
		mt := gws.BinaryMessage
		if i%2 == 0 {
			mt = gws.TextMessage
		}
		if err := c.WriteMessage(mt, m); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		gotType, got, err := c.ReadMessage()
		if err != nil || gotType != mt || !bytes.Equal(got, m) {
			t.Fatalf("message %d (%d bytes): type %d, %d bytes, %v", i, len(m), gotType, len(got), err)
		}
	}
	// Fragmented by hand: one message written in three frames through NextWriter.
	wr, err := c.NextWriter(gws.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"frag-", strings.Repeat("m", 2000), "-end"} {
		io.WriteString(wr, part)
	}
	wr.Close()
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "frag-"+strings.Repeat("m", 2000)+"-end" {
		t.Fatalf("fragmented: %d bytes, %v", len(got), err)
	}
	// Close handshake: the server sees a normal close.
	c.WriteMessage(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, "bye"))
	if _, _, err := c.ReadMessage(); !gws.IsCloseError(err, gws.CloseNormalClosure) {
		t.Fatalf("client after close: %v", err)
	}
	if err := <-closed; !gws.IsCloseError(err, gws.CloseNormalClosure) {
		t.Fatalf("server saw %v, want a normal close", err)
	}
}

// TestCoderEcho: a coder/websocket server, unchanged (it calls WriteHeader(101) and then
// Hijack), with coder's client.
func TestCoderEcho(t *testing.T) {
	closed := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := cws.Accept(w, r, nil)
		if err != nil {
			closed <- err
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(16 << 20)
		ctx := r.Context()
		for {
			mt, msg, err := c.Read(ctx)
			if err != nil {
				closed <- err
				return
			}
			if err := c.Write(ctx, mt, msg); err != nil {
				closed <- err
				return
			}
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, resp, err := cws.Dial(ctx, "ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	c.SetReadLimit(16 << 20)
	for i, m := range messages() {
		mt := cws.MessageBinary
		if i%2 == 0 {
			mt = cws.MessageText
		}
		if err := c.Write(ctx, mt, m); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		gotType, got, err := c.Read(ctx)
		if err != nil || gotType != mt || !bytes.Equal(got, m) {
			t.Fatalf("message %d (%d bytes): type %v, %d bytes, %v", i, len(m), gotType, len(got), err)
		}
	}
	// Fragmented: a message streamed through Writer goes out as several frames.
	wr, err := c.Writer(ctx, cws.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"frag-", strings.Repeat("m", 70000), "-end"} {
		io.WriteString(wr, part)
	}
	wr.Close()
	if _, got, err := c.Read(ctx); err != nil || string(got) != "frag-"+strings.Repeat("m", 70000)+"-end" {
		t.Fatalf("fragmented: %d bytes, %v", len(got), err)
	}
	if err := c.Close(cws.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	err = <-closed
	var ce cws.CloseError
	if !errors.As(err, &ce) || ce.Code != cws.StatusNormalClosure {
		t.Fatalf("server saw %v, want a normal close", err)
	}
}
