// Package websocket serves WebSocket connections (RFC 6455, with permessage-deflate from RFC
// 7692) on reactord's event loops: a connection upgraded by codec/http's native handler stays
// on its loop, with no goroutine of its own, and costs a few hundred bytes while idle.
//
//	u, _ := websocket.NewUpgrader(websocket.HandlerFuncs{
//		Message: func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
//			c.Send(typ, data) // echo
//		},
//	})
//	srv, _ := rhttp.NewServer(rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
//		u.Upgrade(w, r) // answers 101, or the error status itself
//	}))
//
// # The handshake
//
// Upgrader.Upgrade validates the opening handshake — GET, HTTP/1.1, the Upgrade and
// Connection tokens, Sec-WebSocket-Version 13 (otherwise 426 naming it), a key of 16 bytes in
// base64, the origin — selects a subprotocol (WithSubprotocols), negotiates permessage-deflate
// (WithCompression), and answers 101 through rhttp.ResponseWriter.Upgrade, which hands the TCP
// connection and any bytes read after the request to the WebSocket connection.
//
// # Frames on the event loop
//
// Input is parsed where the reactor delivers it, under its sticky-packet rule: every complete
// frame in the bytes of a read is handled, and an incomplete one is left to the reactor, which
// hands it back with the next bytes. An unfragmented message reaches OnMessage as a view into
// the read buffer: it is unmasked in place and validated, never copied. A fragmented one is
// joined in storage borrowed from the loop until its last frame. Control frames may arrive
// between fragments; pings are answered with pongs at once.
//
// Everything RFC 6455 forbids fails the connection with the code it prescribes: 1002 for an
// unmasked frame, reserved bits or opcodes, a fragmented or oversized control frame, a
// continuation without a message, a 64-bit length with its top bit set, an invalid close code;
// 1007 for text that is not UTF-8 (found as soon as the first invalid byte arrives, even inside
// a code point split across fragments) or undecodable compressed data; 1009 for a frame or
// message over the limits (WithMaxMessageSize, WithMaxFrameSize), as soon as its header says
// so. The server sends its close frame, ignores everything but the peer's close frame, and
// closes the TCP connection when that arrives, or when the peer goes, or after the close
// timeout.
//
// # Sending
//
// Send, SendText, Ping and Close are safe from any goroutine. A frame is encoded into the
// connection's stage (a buffer under its mutex); the loop moves it into the TCP connection's
// output when the callback it is running returns, or in a task the sender posts, and the
// reactor writes the iteration's output with one system call. A Send from OnMessage therefore
// costs no task, no wake-up and no allocation. Broadcast (on a Group or the Upgrader) encodes
// a message once and has each loop write it to its members in one task.
//
// Pending output is bounded. When a connection's output reaches the send limit
// (WithSendLimit), the slow-consumer policy (WithSlowConsumerPolicy) drops the message or
// closes the connection; producers on other goroutines that would rather wait use SendWait,
// and handlers on the loop implement WritableHandler. While the reactor's output is above its
// high-water mark the connection's input is not read, so a client that sends without reading
// the answers is paced, not buffered.
//
// # Keepalive and closing
//
// WithKeepalive pings connections that have been silent and closes those that do not answer,
// on the loop's timers (one per connection, re-armed lazily). Close starts the close handshake;
// Upgrader.Shutdown closes every connection with 1001 and waits for the handshakes.
//
// # Threading
//
// Handler callbacks run on the connection's loop goroutine and must not block. Conn documents
// which of its methods are safe from other goroutines; Upgrader and Group methods are safe
// from any goroutine (Upgrade is called from the HTTP handler, on the loop).
//
// For handlers written for net/http and gorilla/websocket or coder/websocket, the codec's
// net/http adapter is the other road; docs/EMBEDDING.md says when to take which.
package websocket
