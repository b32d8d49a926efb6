package examples_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsDial opens a WebSocket to the example with gorilla/websocket, a client written elsewhere.
func wsDial(t *testing.T, url string, compress bool) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: stepTimeout, EnableCompression: compress}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	c.SetReadDeadline(time.Now().Add(2 * stepTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

func wsRead(t *testing.T, c *websocket.Conn, wantType int, want string) {
	t.Helper()
	typ, msg, err := c.ReadMessage()
	if err != nil || typ != wantType || string(msg) != want {
		t.Fatalf("read: type %d %q %v, want type %d %q", typ, msg, err, wantType, want)
	}
}

func driveWSEcho(t *testing.T, p *proc) {
	// A plain request is answered in text; a bad handshake with the status RFC 6455 asks for.
	code, _, body := get(t, httpClient(t), "GET", "http://"+p.addr+"/", "")
	if code != 200 || !strings.Contains(body, "WebSocket") {
		t.Fatalf("plain GET: %d %q", code, body)
	}
	code, hdr, _ := get(t, httpClient(t), "GET", "http://"+p.addr+"/", "", "Upgrade", "websocket", "Connection", "Upgrade",
		"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "8")
	if code != http.StatusUpgradeRequired || hdr.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("version 8: %d %v, want 426 naming version 13", code, hdr)
	}
	for _, compress := range []bool{false, true} {
		c := wsDial(t, "ws://"+p.addr+"/", compress)
		big := strings.Repeat("echo, echo, echo. ", 10000) // compressible, several reads
		c.WriteMessage(websocket.TextMessage, []byte("hello"))
		wsRead(t, c, websocket.TextMessage, "hello")
		c.WriteMessage(websocket.BinaryMessage, []byte(big))
		wsRead(t, c, websocket.BinaryMessage, big)
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("after the close: %v, want the echoed close 1000", err)
		}
	}
}

func driveWSChat(t *testing.T, p *proc) {
	code, hdr, body := get(t, httpClient(t), "GET", "http://"+p.addr+"/", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(body, "new WebSocket(") {
		t.Fatalf("the page: %d %v %.80q", code, hdr, body)
	}
	alice := wsDial(t, "ws://"+p.addr+"/ws?name=alice", true)
	wsRead(t, alice, websocket.TextMessage, "* alice joined (1 here)")
	bob := wsDial(t, "ws://"+p.addr+"/ws?name=bob", false)
	wsRead(t, alice, websocket.TextMessage, "* bob joined (2 here)")
	wsRead(t, bob, websocket.TextMessage, "* bob joined (2 here)")
	alice.WriteMessage(websocket.TextMessage, []byte("hi bob"))
	wsRead(t, alice, websocket.TextMessage, "alice: hi bob")
	wsRead(t, bob, websocket.TextMessage, "alice: hi bob")
	bob.WriteMessage(websocket.TextMessage, []byte("hi alice"))
	wsRead(t, alice, websocket.TextMessage, "bob: hi alice")
	wsRead(t, bob, websocket.TextMessage, "bob: hi alice")
	// A binary message is refused with 1003, and the room hears that bob left.
	bob.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	if _, _, err := bob.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
		t.Fatalf("binary message: %v, want close 1003", err)
	}
	wsRead(t, alice, websocket.TextMessage, "* bob left (1 here)")
	alice.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
	if _, _, err := alice.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("alice leaving: %v, want the echoed close 1001", err)
	}
}
