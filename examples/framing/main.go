// Command framing serves a length-prefixed protocol on the reactor and shows how OnData's
// consumed count turns a byte stream into messages, whatever way TCP cut it up.
//
// A frame is a 2-byte big-endian payload length followed by the payload (so at most 65535
// bytes). The server answers each frame with a frame holding the payload in upper case, and
// prints one line per OnData call:
//
//	OnData: 3 bytes in, 0 frame(s), consumed 0, kept 3
//
// A frame split over several packets is answered once its last byte arrives: until then
// OnData consumes nothing and the reactor keeps the partial frame, handing it back with the
// next bytes appended. Frames coalesced into one packet are all handled in one call.
//
//	go run ./examples/framing                 # the server, on 127.0.0.1:9000
//	go run ./examples/framing -client         # a client that sends split and coalesced frames
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// headerLen is the size of the length prefix.
const headerLen = 2

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "TCP address to listen on (with -client: to connect to)")
	client := flag.Bool("client", false, "run the demo client against -addr instead of the server")
	flag.Parse()
	run := serve
	if *client {
		run = demoClient
	}
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "framing:", err)
		os.Exit(1)
	}
}

// framer is the protocol handler. It has no fields: several loops call it at the same time,
// so state lives on the connection (SetContext) or the loop (Loop.SetContext), never here.
type framer struct{}

func (framer) OnOpen(c *reactor.Conn) {}

func (framer) OnClose(c *reactor.Conn, err error) {}

// OnData handles every complete frame at the start of in and returns how many bytes they
// took. A partial frame at the end is not consumed: the reactor keeps it and calls OnData
// again with it at the front of in once more bytes arrive.
func (framer) OnData(c *reactor.Conn, in []byte) int {
	consumed, frames := 0, 0
	// Stop at the high-water mark (see reactor.WithWatermarks): the reactor stops reading
	// this connection until the peer has read the answers, then hands back what is left.
	for !c.OutputFull() {
		rest := in[consumed:]
		if len(rest) < headerLen {
			break // not even a whole header yet
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < headerLen+n {
			break // the payload is still on its way
		}
		answer(c, rest[headerLen:headerLen+n])
		consumed += headerLen + n
		frames++
	}
	fmt.Printf("OnData: %d bytes in, %d frame(s), consumed %d, kept %d\n", len(in), frames, consumed, len(in)-consumed)
	return consumed
}

// scratch is a per-loop buffer for building answers. Only the loop's goroutine touches it,
// so it needs no lock, and after the first few frames answering allocates nothing.
type scratch struct{ buf []byte }

// answer writes a frame holding payload in upper case. payload points into OnData's in, so
// it is read here and never kept; Write copies the answer into the connection's output.
func answer(c *reactor.Conn, payload []byte) {
	l := c.Loop()
	s, ok := l.Context().(*scratch)
	if !ok {
		s = &scratch{}
		l.SetContext(s)
	}
	b := binary.BigEndian.AppendUint16(s.buf[:0], uint16(len(payload)))
	for _, ch := range payload {
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		b = append(b, ch)
	}
	s.buf = b
	c.Write(b)
}

func serve(addr string) error {
	// Catch the signals before anything else: one arriving before this would kill the
	// process instead of shutting it down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer log.Sync()
	srv, err := reactor.NewServer(framer{}, reactor.WithLogger(log))
	if err != nil {
		return err
	}
	bound, err := srv.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", bound)
	return srv.Run(ctx, 5*time.Second) // serve until SIGINT or SIGTERM, then drain

}

// frame encodes one frame.
func frame(payload string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(payload))), payload...)
}

// demoClient sends one frame a byte at a time, then two frames in one write, and prints the
// answers. The pauses only make the split visible in the server's output.
func demoClient(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))

	split := frame("split")
	fmt.Printf("sending %d bytes one at a time\n", len(split))
	for i := range split {
		if _, err := conn.Write(split[i : i+1]); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	coalesced := append(frame("coalesced"), frame("packets")...)
	fmt.Printf("sending two frames in one write of %d bytes\n", len(coalesced))
	if _, err := conn.Write(coalesced); err != nil {
		return err
	}
	for range 3 {
		var hdr [headerLen]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return err
		}
		payload := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, payload); err != nil {
			return err
		}
		fmt.Printf("answer: %q\n", payload)
	}
	return nil
}
