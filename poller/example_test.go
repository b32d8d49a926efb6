package poller_test

import (
	"fmt"
	"log"
	"time"

	"github.com/reactord/reactord/poller"
	"golang.org/x/sys/unix"
)

// ExampleOpen opens the best backend for this OS, watches one end of a socket pair, and waits
// for the bytes written to the other end.
func ExampleOpen() {
	p, err := poller.Open("auto")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	// Remove before close: see Poller.Remove. Deferred calls run last-in first-out.
	defer p.Remove(fds[0])

	if err := p.Add(fds[0], poller.Readable); err != nil {
		log.Fatal(err)
	}
	if _, err := unix.Write(fds[1], []byte("hello")); err != nil {
		log.Fatal(err)
	}

	events := make([]poller.Event, 16) // reused across Waits by a real loop
	n, err := p.Wait(events, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events[:n] {
		buf := make([]byte, 64)
		m, _ := unix.Read(ev.FD, buf)
		fmt.Printf("%v: %q\n", ev.Events, buf[:m])
	}
	// Output:
	// Readable: "hello"
}
