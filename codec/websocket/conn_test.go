package websocket

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gorilla/websocket"
)

func TestEchoRaw(t *testing.T) {
	rec := newRecorder(true)
	ts := startWS(t, rec, nil)
	rc, _ := dialRaw(t, ts.addr, "")
	rc.send(true, opText, []byte("hello"))
	rc.expectMessage(opText, []byte("hello"))
	big := bytes.Repeat([]byte("0123456789"), 10000)
	rc.send(true, opBinary, big)
	rc.expectMessage(opBinary, big)
	rc.send(false, opText, []byte("frag"))
	rc.send(true, opPing, []byte("p"))
	rc.expectMessage(opPong, []byte("p"))
	rc.send(true, opContinuation, []byte("mented"))
	rc.expectMessage(opText, []byte("fragmented"))
	rc.send(true, opClose, closePayload(CloseNormal, "bye"))
	f := rc.mustRead()
	if f.op != opClose || !bytes.Equal(f.payload, closePayload(CloseNormal, "")) {
		t.Fatalf("close reply %+v", f)
	}
	rc.expectEOF()
	err := rec.waitClosed(t)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseNormal || ce.Reason != "bye" || !ce.Remote {
		t.Fatalf("OnClose(%v)", err)
	}
}

func TestEchoGorilla(t *testing.T) {
	ts := startWS(t, echoHandler, nil)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+ts.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 100; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, i*97)
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %v %d %d bytes", i, err, typ, len(got))
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after close: %v", err)
	}
}
