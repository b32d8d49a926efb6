package reactor

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// childModes maps REACTOR_TEST_CHILD values to the helper run in the re-executed test binary.
// Platform-specific modes add themselves from an init function in their own file.
var childModes = map[string]func() int{
	"clients": clientsChild,
}

// runChild runs a helper mode in a re-executed test binary and returns its exit code.
func runChild(mode string) int {
	if f, ok := childModes[mode]; ok {
		return f()
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q on %s\n", mode, runtime.GOOS)
	return 2
}

// clientsChild opens REACTOR_TEST_N raw connections to REACTOR_TEST_ADDR, does one echo round
// trip on each, prints READY and holds them until stdin closes. It lets a benchmark hold
// 10,000 connections without the client ends sharing the server's descriptor limit and heap.
func clientsChild() int {
	n, _ := strconv.Atoi(os.Getenv("REACTOR_TEST_N"))
	ta, err := net.ResolveTCPAddr("tcp", os.Getenv("REACTOR_TEST_ADDR"))
	if err != nil || n <= 0 {
		fmt.Println("ERR", err, n)
		return 1
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	one, buf := []byte{'x'}, make([]byte, 1)
	for i := 0; i < n; i++ {
		// No SOCK_CLOEXEC (macOS has none): this child never starts another process.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err == nil {
			err = unix.Connect(fd, sa)
		}
		if err == nil {
			_, err = unix.Write(fd, one)
		}
		if err == nil {
			_, err = unix.Read(fd, buf)
		}
		if err != nil {
			fmt.Println("ERR", i, err)
			return 1
		}
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	return 0
}
