package websocket

import (
	"io"
	nethttp "net/http"
	"strings"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
)

func TestAcceptKey(t *testing.T) {
	// The example of RFC 6455 §1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
}

func TestHandshakeValidation(t *testing.T) {
	const key = "Sec-WebSocket-Key: " + testKey + "\r\n"
	const ver = "Sec-WebSocket-Version: 13\r\n"
	const up = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	tests := []struct {
		name    string
		req     string
		status  int
		headers map[string]string // response headers required
		opts    []Option
	}{
		{"valid", "GET / HTTP/1.1\r\nHost: h\r\n" + up + key + ver, 101, map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, nil},
		{"tokens in lists, any case", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, WebSocket\r\nConnection: keep-alive, UPGRADE\r\n" + key + ver, 101, nil, nil},
		{"tokens on several lines", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n" + key + ver, 101, nil, nil},
		{"POST", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n" + up + key + ver, 405, map[string]string{"Allow": "GET"}, nil},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n" + up + key + ver, 400, nil, nil},
		{"no Upgrade", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n" + key + ver, 426, map[string]string{"Upgrade": "websocket"}, nil},
		{"Upgrade: h2c only", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" + key + ver, 426, nil, nil},
		{"no Connection: Upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" + key + ver, 426, nil, nil},
		{"version 8", "GET / HTTP/1.1\r\nHost: h\r\n" + up + key + "Sec-WebSocket-Version: 8\r\n", 426, map[string]string{"Sec-WebSocket-Version": "13"}, nil},
		{"no version", "GET / HTTP/1.1\r\nHost: h\r\n" + up + key, 426, map[string]string{"Sec-WebSocket-Version": "13"}, nil},
		{"two versions", "GET / HTTP/1.1\r\nHost: h\r\n" + up + key + ver + ver, 426, nil, nil},
		{"no key", "GET / HTTP/1.1\r\nHost: h\r\n" + up + ver, 400, nil, nil},
		{"key of 15 bytes", "GET / HTTP/1.1\r\nHost: h\r\n" + up + "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" + ver, 400, nil, nil},
		{"key of 17 bytes", "GET / HTTP/1.1\r\nHost: h\r\n" + up + "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n" + ver, 400, nil, nil},
		{"key not base64", "GET / HTTP/1.1\r\nHost: h\r\n" + up + "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n" + ver, 400, nil, nil},
		{"two keys", "GET / HTTP/1.1\r\nHost: h\r\n" + up + key + key + ver, 400, nil, nil},
		{"same origin", "GET / HTTP/1.1\r\nHost: example.com:8080\r\nOrigin: https://Example.com:8080\r\n" + up + key + ver, 101, nil, nil},
		{"cross origin", "GET / HTTP/1.1\r\nHost: example.com\r\nOrigin: https://evil.example\r\n" + up + key + ver, 403, nil, nil},
		{"null origin", "GET / HTTP/1.1\r\nHost: example.com\r\nOrigin: null\r\n" + up + key + ver, 403, nil, nil},
		{"cross origin, any allowed", "GET / HTTP/1.1\r\nHost: example.com\r\nOrigin: https://evil.example\r\n" + up + key + ver, 101, nil, []Option{WithOriginCheck(AllowAnyOrigin)}},
		{"custom origin check", "GET / HTTP/1.1\r\nHost: example.com\r\nOrigin: https://ok.example\r\n" + up + key + ver, 101, nil, []Option{WithOriginCheck(func(r *rhttp.Request) bool {
			o, _ := r.Header("Origin")
			return string(o) == "https://ok.example"
		})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startWS(t, echoHandler, tc.opts)
			rc := dialTCP(t, ts.addr)
			rc.write([]byte(tc.req + "\r\n"))
			resp, err := nethttp.ReadResponse(rc.br, &nethttp.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Fatalf("%s: %q, want %q", k, got, v)
				}
			}
			if tc.status == 101 {
				rc.send(true, opText, []byte("hi"))
				rc.expectMessage(opText, []byte("hi"))
				return
			}
			if resp.Header.Get("Sec-WebSocket-Accept") != "" {
				t.Fatal("refused handshake carries an accept key")
			}
			// A refused handshake is an ordinary HTTP exchange: the connection stays usable.
			if strings.Contains(tc.req, "HTTP/1.1") {
				rc.write([]byte("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"))
				resp, err := nethttp.ReadResponse(rc.br, &nethttp.Request{Method: "GET"})
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("next request after the refusal: %v %v", resp, err)
				}
			}
			if st := ts.u.Stats(); st.Rejected != 1 || st.Upgrades != 0 {
				t.Fatalf("stats %+v, want 1 rejected", st)
			}
		})
	}
}

func TestSubprotocolNegotiation(t *testing.T) {
	tests := []struct {
		offer string // Sec-WebSocket-Protocol lines, "" for none
		want  string
	}{
		{"", ""},
		{"Sec-WebSocket-Protocol: chat\r\n", "chat"},
		{"Sec-WebSocket-Protocol: superchat, chat\r\n", "chat"}, // the server's preference wins
		{"Sec-WebSocket-Protocol: superchat\r\n", "superchat"},
		{"Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: superchat\r\n", "superchat"},
		{"Sec-WebSocket-Protocol: foo, bar\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.offer, func(t *testing.T) {
			rec := newRecorder(false)
			ts := startWS(t, rec, []Option{WithSubprotocols("chat", "superchat")})
			_, resp := dialRaw(t, ts.addr, tc.offer)
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tc.want {
				t.Fatalf("response Sec-WebSocket-Protocol %q, want %q", got, tc.want)
			}
			if c := rec.waitOpened(t); c.Subprotocol() != tc.want {
				t.Fatalf("Subprotocol() = %q, want %q", c.Subprotocol(), tc.want)
			}
		})
	}
}

func TestDeflateNegotiation(t *testing.T) {
	tests := []struct {
		name   string
		cc     *Compression
		offer  string
		want   string // response extension, "" for none
		server bool   // server takeover expected
		client bool   // client takeover expected
		huff   bool
	}{
		{"compression off", nil, "permessage-deflate", "", false, false, false},
		{"plain offer", &Compression{}, "permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false, false},
		{"browser offer", &Compression{}, "permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false, false},
		{"takeover allowed", &Compression{ServerContextTakeover: true, ClientContextTakeover: true}, "permessage-deflate; client_max_window_bits", "permessage-deflate", true, true, false},
		{"client refuses takeover", &Compression{ServerContextTakeover: true, ClientContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false, false},
		{"server_max_window_bits=15", &Compression{}, "permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15", false, false, false},
		{"server_max_window_bits=10: Huffman only", &Compression{ServerContextTakeover: true}, "permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10", false, false, true},
		{"quoted value", &Compression{}, `permessage-deflate; server_max_window_bits="12"`, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12", false, false, true},
		{"client_max_window_bits=9 is fine", &Compression{}, "permessage-deflate; client_max_window_bits=9", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false, false},
		{"server_max_window_bits without value declined", &Compression{}, "permessage-deflate; server_max_window_bits", "", false, false, false},
		{"window bits 16 declined", &Compression{}, "permessage-deflate; server_max_window_bits=16", "", false, false, false},
		{"window bits 7 declined", &Compression{}, "permessage-deflate; client_max_window_bits=7", "", false, false, false},
		{"leading zero declined", &Compression{}, "permessage-deflate; server_max_window_bits=09", "", false, false, false},
		{"unknown parameter declined", &Compression{}, "permessage-deflate; foo=1", "", false, false, false},
		{"repeated parameter declined", &Compression{}, "permessage-deflate; client_no_context_takeover; client_no_context_takeover", "", false, false, false},
		{"value on a flag declined", &Compression{}, "permessage-deflate; server_no_context_takeover=1", "", false, false, false},
		{"first acceptable offer taken", &Compression{}, "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false, false},
		{"unknown extension only", &Compression{}, "x-custom; a=\"b,c\"", "", false, false, false},
		{"Huffman-only level", &Compression{Level: -2}, "permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := rhttp.NewParser(rhttp.Limits{})
			_, r, err := p.Parse([]byte("GET / HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Extensions: " + tc.offer + "\r\n\r\n"))
			if err != nil || r == nil {
				t.Fatalf("parse: %v", err)
			}
			var mode deflateMode
			var got []byte
			if tc.cc != nil {
				cc := *tc.cc
				WithCompression(cc)(&config{})
				if cc.Level == 0 {
					cc.Level = 1
				}
				mode, got = negotiateDeflate(r, &cc, nil)
			}
			if string(got) != tc.want || mode.on != (tc.want != "") {
				t.Fatalf("response %q (on=%v), want %q", got, mode.on, tc.want)
			}
			if mode.serverTakeover != tc.server || mode.clientTakeover != tc.client || mode.huffman != tc.huff {
				t.Fatalf("mode %+v, want server takeover %v, client takeover %v, huffman %v", mode, tc.server, tc.client, tc.huff)
			}
		})
	}
}

func TestOptionsValidated(t *testing.T) {
	bad := []Option{
		WithSubprotocols("ok", "not a token"),
		WithMaxMessageSize(0),
		WithMaxMessageSize(MaxMessageSizeLimit + 1),
		WithMaxFrameSize(-1),
		WithKeepalive(-1, 0),
		WithCloseTimeout(0),
		WithSendLimit(0),
		WithSlowConsumerPolicy(7),
		WithCompression(Compression{Level: 10}),
		WithLogger(nil),
		nil,
	}
	for i, o := range bad {
		if _, err := NewUpgrader(echoHandler, o); err == nil || !strings.Contains(err.Error(), "invalid option") {
			t.Errorf("option %d: NewUpgrader error %v, want ErrInvalidOption", i, err)
		}
	}
	if _, err := NewUpgrader(nil); err == nil {
		t.Error("NewUpgrader(nil) succeeded")
	}
	if _, err := NewUpgrader(echoHandler, WithMaxMessageSize(10), WithMaxFrameSize(5), WithKeepalive(1, 0), WithCompression(Compression{Level: 9, MinSize: -1})); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}
