package servers

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestNginxStartReturnsWhenServing checks, the moment Start returns, that nginx's event loop
// already watches its listening socket. Its socket accepts connections from listen() on, while
// nginx reads its configuration; only later, after it has allocated and filled its connection
// tables (most of a second on a loaded machine), does it add the socket to its epoll set and
// answer. A Start that returned at the first accepted connection handed the harness an nginx
// still starting, and `bench http` measured that start-up: 0 req/s, no errors.
func TestNginxStartReturnsWhenServing(t *testing.T) {
	s, _ := Lookup("nginx")
	if err := s.Available(); err != nil {
		t.Skipf("%v: install nginx-light to run this (.ci/run does)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(30*time.Second))
	defer cancel()
	inst, err := s.Start(ctx, Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := inst.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	watched, err := epollWatchesSocket(inst.PID())
	if err != nil {
		t.Fatal(err)
	}
	if !watched {
		t.Fatal("Start returned before nginx's event loop watched its listening socket (nginx was still starting up)")
	}
}

// epollWatchesSocket reports whether some epoll instance of process pid has a socket in its
// interest list: /proc/PID/fdinfo of an eventpoll descriptor lists one "tfd: N" line per
// watched descriptor N. Before nginx's event loop starts, it watches no socket at all (only
// an eventfd); the first it adds is its listening socket.
func epollWatchesSocket(pid int) (bool, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		if l, _ := os.Readlink(filepath.Join(dir, "fd", fd.Name())); l != "anon_inode:[eventpoll]" {
			continue
		}
		f, err := os.Open(filepath.Join(dir, "fdinfo", fd.Name()))
		if err != nil {
			return false, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 || fields[0] != "tfd:" {
				continue
			}
			if l, _ := os.Readlink(filepath.Join(dir, "fd", fields[1])); strings.HasPrefix(l, "socket:") {
				f.Close()
				return true, nil
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return false, err
		}
	}
	return false, nil
}
