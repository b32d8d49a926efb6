package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/cmd/reactord/internal/config"
)

// listenSpec turns a -listen value into the reactor's network and address.
func listenSpec(addr string) (network, address string) {
	if p, ok := config.IsUnix(addr); ok {
		return "unix", p
	}
	return "tcp", addr
}

// removeStaleSocket deletes a Unix socket file left by a process that died without cleaning
// up, so that bind(2) does not fail with EADDRINUSE. It only removes a socket nobody accepts
// on: connect(2) must fail with ECONNREFUSED. A live socket (another daemon) or a file that
// is not a socket is left alone, and bind then reports the conflict.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	// A connect to a Unix socket nobody listens on fails at once with ECONNREFUSED; the
	// timeout only guards against a listener whose backlog is full.
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return nil
	}
	if errors.Is(err, unix.ECONNREFUSED) {
		return os.Remove(path)
	}
	return nil
}

// formatAddr renders a bound address in -listen syntax, so the addr file can be fed back.
func formatAddr(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}

// writeAddrFile writes the bound addresses, one per line, atomically: a reader polling for
// the file never sees it half written.
func writeAddrFile(path string, addrs []string) error {
	if err := writeFileAtomic(path, []byte(strings.Join(addrs, "\n")+"\n"), ".reactord-addr-*"); err != nil {
		return fmt.Errorf("addr-file: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file (named after pattern) beside path, then
// renames it over path, so a reader sees the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, pattern string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return werr
	}
	return nil
}
