package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// Conformance with clients no one here wrote: gorilla/websocket and coder/websocket (Go),
// node's ws and Python's websockets, each driving the echo handler through the sections of
// the Autobahn testsuite a well-behaved client can exercise (1 framing, 2 ping/pong, 5
// fragmentation, 6 UTF-8, 7 close, 9 limits, 12-13 compression with and without context
// takeover). The bad input of every section is sent by conformance_test.go's raw client.

// clientLimit is the servers' message limit here: a little over the 1 MiB messages sent.
const clientLimit = 1<<20 + 1024

// serverConfigs are the server configurations every client runs against.
var serverConfigs = []struct {
	name string
	opts []Option
}{
	{"no-takeover", []Option{WithMaxMessageSize(clientLimit), WithCompression(Compression{})}},
	{"takeover", []Option{WithMaxMessageSize(clientLimit), WithCompression(Compression{ServerContextTakeover: true, ClientContextTakeover: true})}},
}

func utf8Sample() string { return "Hello-µ@ßöäüàá-UTF-8!! κόσμε \U0010ffff 😀" }

func TestClientGorilla(t *testing.T) {
	for _, sc := range serverConfigs {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compress=%v", sc.name, compress), func(t *testing.T) {
				ts := startWS(t, echoHandler, sc.opts, reactor.WithLoops(2))
				d := websocket.Dialer{EnableCompression: compress}
				c, resp, err := d.Dial("ws://"+ts.addr+"/", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := resp.Header.Get("Sec-WebSocket-Extensions") != ""; got != compress {
					t.Fatalf("extension negotiated %v, want %v", got, compress)
				}
				c.SetReadDeadline(time.Now().Add(testsupport.Scale(30 * time.Second)))
				echo := func(typ int, p []byte) {
					t.Helper()
					if err := c.WriteMessage(typ, p); err != nil {
						t.Fatal(err)
					}
					gt, got, err := c.ReadMessage()
					if err != nil || gt != typ || !bytes.Equal(got, p) {
						t.Fatalf("echo of %d bytes: type %d, %d bytes, %v", len(p), gt, len(got), err)
					}
				}
				// 1 framing.
				for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
					echo(websocket.TextMessage, bytes.Repeat([]byte("*"), n))
					echo(websocket.BinaryMessage, bytes.Repeat([]byte{0xfe}, n))
				}
				// 2 ping/pong.
				pong := make(chan string, 1)
				c.SetPongHandler(func(s string) error { pong <- s; return nil })
				c.WriteControl(websocket.PingMessage, []byte("ping payload"), time.Now().Add(time.Second))
				echo(websocket.TextMessage, []byte("after ping")) // ReadMessage runs the pong handler
				if got := <-pong; got != "ping payload" {
					t.Fatalf("pong %q", got)
				}
				// 5 fragmentation: gorilla's writer frames a message by its 4 KiB buffer.
				w, _ := c.NextWriter(websocket.TextMessage)
				msg := strings.Repeat(utf8Sample(), 500)
				for i := 0; i < len(msg); i += 1000 {
					w.Write([]byte(msg[i:min(i+1000, len(msg))]))
				}
				w.Close()
				if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
					t.Fatalf("fragmented message: %d bytes, %v", len(got), err)
				}
				// 6 UTF-8, 9 large.
				echo(websocket.TextMessage, []byte(utf8Sample()))
				echo(websocket.TextMessage, bytes.Repeat([]byte("BAsd7&jh23"), 104857))
				echo(websocket.BinaryMessage, bytes.Repeat([]byte{0, 1, 2, 3}, 1<<18))
				// 7 close: the code is echoed.
				c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
				if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 4001) {
					t.Fatalf("close: %v, want 4001 echoed", err)
				}
			})
		}
	}
}

func TestClientCoder(t *testing.T) {
	modes := []struct {
		name string
		mode coder.CompressionMode
	}{
		{"disabled", coder.CompressionDisabled},
		{"no-context-takeover", coder.CompressionNoContextTakeover},
		{"context-takeover", coder.CompressionContextTakeover},
	}
	for _, sc := range serverConfigs {
		for _, m := range modes {
			t.Run(sc.name+"/"+m.name, func(t *testing.T) {
				ts := startWS(t, echoHandler, sc.opts, reactor.WithLoops(2))
				ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(30*time.Second))
				defer cancel()
				c, _, err := coder.Dial(ctx, "ws://"+ts.addr+"/", &coder.DialOptions{CompressionMode: m.mode, CompressionThreshold: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				c.SetReadLimit(64 << 20)
				echo := func(typ coder.MessageType, p []byte) {
					t.Helper()
					if err := c.Write(ctx, typ, p); err != nil {
						t.Fatal(err)
					}
					gt, got, err := c.Read(ctx)
					if err != nil || gt != typ || !bytes.Equal(got, p) {
						t.Fatalf("echo of %d bytes: type %v, %d bytes, %v", len(p), gt, len(got), err)
					}
				}
				for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
					echo(coder.MessageText, bytes.Repeat([]byte("*"), n))
					echo(coder.MessageBinary, bytes.Repeat([]byte{0xfe}, n))
				}
				// 12-13: similar messages in a row, where context takeover pays.
				for i := range 50 {
					echo(coder.MessageText, []byte(fmt.Sprintf(`{"user":"alice","text":"message number %d","room":"general"}`, i)))
				}
				// 2 ping/pong: Ping waits for the pong, which a concurrent reader delivers.
				pinged := make(chan error, 1)
				go func() { pinged <- c.Ping(ctx) }()
			reading:
				for {
					// Reads process the pong; keep reading (echoes) until Ping has its answer.
					echo(coder.MessageText, []byte("while pinging"))
					select {
					case err := <-pinged:
						if err != nil {
							t.Fatalf("Ping: %v", err)
						}
						break reading
					case <-ctx.Done():
						t.Fatal("no pong")
					default:
					}
				}
				// 5 fragmentation: every Write on a Writer is a frame.
				w, err := c.Writer(ctx, coder.MessageText)
				if err != nil {
					t.Fatal(err)
				}
				msg := strings.Repeat(utf8Sample(), 100)
				for i := 0; i < len(msg); i += 777 {
					w.Write([]byte(msg[i:min(i+777, len(msg))]))
				}
				w.Close()
				if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
					t.Fatalf("fragmented message: %d bytes, %v", len(got), err)
				}
				echo(coder.MessageText, []byte(utf8Sample()))
				echo(coder.MessageText, bytes.Repeat([]byte("BAsd7&jh23"), 104857))
				// 7 close.
				if err := c.Close(4002, "bye"); err != nil {
					t.Fatalf("close handshake: %v", err)
				}
			})
		}
	}
}

// TestClientCoderTooBig: a message over the limit ends with 1009 for a real client too.
func TestClientCoderTooBig(t *testing.T) {
	ts := startWS(t, echoHandler, []Option{WithMaxMessageSize(4096)})
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
	defer cancel()
	c, _, err := coder.Dial(ctx, "ws://"+ts.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, coder.MessageBinary, make([]byte, 4097))
	_, _, err = c.Read(ctx)
	if coder.CloseStatus(err) != coder.StatusMessageTooBig {
		t.Fatalf("read after an oversized message: %v, want close 1009", err)
	}
}

// externalClient runs a client script against every server configuration and requires its
// "ok" lines and a clean exit.
func externalClient(t *testing.T, name string, argv func(url string) []string, env []string) {
	for _, sc := range serverConfigs {
		t.Run(sc.name, func(t *testing.T) {
			ts := startWS(t, echoHandler, sc.opts, reactor.WithLoops(2))
			args := argv("ws://" + ts.addr + "/")
			ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(90*time.Second))
			defer cancel()
			cmd := exec.CommandContext(ctx, args[0], append(args[1:], fmt.Sprint(clientLimit))...)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			oks := strings.Count(string(out), "\nok ") + map[bool]int{true: 1}[strings.HasPrefix(string(out), "ok ")]
			if err != nil || !strings.Contains(string(out), "\ndone") {
				t.Fatalf("%s client: %v\n%s", name, err, out)
			}
			// 2 modes x (14 framing + ping + fragmented + utf8 + 1 MiB + in flight + close), and 1009.
			if oks != 2*20+1 {
				t.Fatalf("%s client: %d cases passed, want 41\n%s", name, oks, out)
			}
			ts.waitOpen(t, 0)
		})
	}
}

func TestClientNodeWS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (apt-get install nodejs; .ci/run installs it): skipping node's ws client")
	}
	mods, _ := filepath.Abs(filepath.Join("testdata", "node", "node_modules"))
	if _, err := os.Stat(filepath.Join(mods, "ws")); err != nil {
		t.Skipf("node's ws package is missing: npm install --prefix codec/websocket/testdata/node ws@8 (.ci/run does): %v", err)
	}
	externalClient(t, "node ws", func(url string) []string {
		return []string{node, filepath.Join("testdata", "clients", "ws_client.js"), url}
	}, []string{"NODE_PATH=" + mods})
}

func TestClientPythonWebsockets(t *testing.T) {
	// Debian's python3-websockets installs for the system interpreter, not for a pyenv one
	// that may come first in PATH.
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import websockets").Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || errors.Is(err, os.ErrNotExist) {
			t.Skipf("%s with websockets is missing (apt-get install python3-websockets; .ci/run installs it): %v", py, err)
		}
		t.Fatal(err)
	}
	externalClient(t, "python websockets", func(url string) []string {
		return []string{py, filepath.Join("testdata", "clients", "ws_client.py"), url}
	}, nil)
}
