// Command udp-broadcast runs a UDP receiver on the reactor and a sender that broadcasts to
// it. The receiver prints every datagram and answers the sender with a unicast "ack"; the
// sender prints the answers.
//
// By default everything stays on the loopback interface: the receiver binds the loopback
// broadcast address 127.255.255.255 (a socket bound to 127.0.0.1 would not see broadcasts)
// and the sender, bound to 127.0.0.1, sends there. Sending to a broadcast address needs
// SO_BROADCAST on the sending socket: without it the kernel answers EACCES.
//
//	go run ./examples/udp-broadcast
//	go run ./examples/udp-broadcast -addr 0.0.0.0:9000 -from 0.0.0.0:0 -to 192.168.1.255   # a LAN
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/reactor"
)

func main() {
	addr := flag.String("addr", "127.255.255.255:9000", "UDP address the receiver binds (port 0 picks a free port)")
	to := flag.String("to", "127.255.255.255", "broadcast IP the sender sends to, at the receiver's port")
	from := flag.String("from", "127.0.0.1:0", "UDP address the sender binds")
	every := flag.Duration("every", time.Second, "interval between broadcasts (0 = do not send)")
	count := flag.Int("count", 0, "number of broadcasts to send (0 = until interrupted)")
	flag.Parse()
	if err := run(*addr, *to, *from, *every, *count); err != nil {
		fmt.Fprintln(os.Stderr, "udp-broadcast:", err)
		os.Exit(1)
	}
}

func run(addr, to, from string, every time.Duration, count int) error {
	// Catch the signals before anything else: one arriving before this would kill the
	// process instead of shutting it down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dst := net.ParseIP(to).To4()
	if dst == nil {
		return fmt.Errorf("-to %q: not an IPv4 address", to)
	}
	if every < 0 || count < 0 {
		return fmt.Errorf("-every and -count must not be negative")
	}
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer log.Sync()

	// The receiver: OnDatagram runs on the socket's loop goroutine. data is only valid
	// during the call; from may be kept.
	receive := reactor.PacketHandlerFunc(func(pc *reactor.PacketConn, data []byte, from net.Addr) {
		fmt.Printf("received %q from %s\n", data, from)
		var buf [512]byte
		ack := append(append(buf[:0], "ack "...), data...)
		// WriteTo never blocks: a full socket buffer drops the datagram (EAGAIN), as UDP may.
		if err := pc.WriteTo(ack, from); err != nil {
			fmt.Printf("ack to %s: %v\n", from, err)
		}
	})
	// No Handler for streams: this server only has a packet socket, so OnData never runs.
	srv, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1), reactor.WithLogger(log))
	if err != nil {
		return err
	}
	bound, err := srv.ListenPacket("udp4", addr, receive)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", bound)

	var wg sync.WaitGroup
	if every > 0 {
		target := &net.UDPAddr{IP: dst, Port: bound.(*net.UDPAddr).Port}
		if err := startSender(ctx, &wg, from, target, every, count); err != nil {
			srv.Close()
			return err
		}
	}
	err = srv.Run(ctx, 5*time.Second) // serve until SIGINT or SIGTERM, then drain
	stop()                            // ends the sender too if Run returned early
	wg.Wait()
	return err
}

// startSender opens a UDP socket with SO_BROADCAST and broadcasts "hello N" to target every
// interval, count times (0: until ctx is done), printing the acks it gets back. It is plain
// blocking code on goroutines of its own: only the receiver runs on the reactor. (A reactor
// PacketConn is handed to OnDatagram rather than returned by ListenPacket, so a socket that
// must speak first is simplest outside the reactor.)
func startSender(ctx context.Context, wg *sync.WaitGroup, from string, target *net.UDPAddr, every time.Duration, count int) error {
	local, err := net.ResolveUDPAddr("udp4", from)
	if err != nil {
		return fmt.Errorf("-from: %w", err)
	}
	conn, err := net.ListenUDP("udp4", local)
	if err != nil {
		return err
	}
	// The net package has no option for SO_BROADCAST: set it on the descriptor.
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	}); err != nil || serr != nil {
		conn.Close()
		return errors.Join(err, serr)
	}
	wg.Add(2)
	go func() {
		// Closing the socket when ctx is done also ends the reader below.
		defer wg.Done()
		defer conn.Close()
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 1; count == 0 || i <= count; i++ {
			msg := fmt.Sprintf("hello %d", i)
			if _, err := conn.WriteTo([]byte(msg), target); err != nil {
				fmt.Printf("send: %v\n", err)
			} else {
				fmt.Printf("sent %q to %s\n", msg, target)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		<-ctx.Done() // keep reading acks until interrupted
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			fmt.Printf("sender got %q from %s\n", buf[:n], peer)
		}
	}()
	return nil
}
