package servers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// reactord-daemon is the daemon itself (cmd/reactord), built from this checkout and run as a
// process of its own with its defaults, so what is measured is what is deployed: its static
// file handler answers GET / with an index.html holding the harness's body (any other path is
// 404, any other method 405), its metrics and access log are on (the log goes to /dev/null).
// The differences from a default start: one loop unless Options.Loops says otherwise, the
// poller from Options.Poller, warnings-only JSON logs to stderr, and a 1 h idle timeout so
// that connections opened early in a long "idle" run are still open at its end.
func daemonServer() Server {
	return Server{
		Name:        "reactord-daemon",
		Description: "the daemon (cmd/reactord) built from this checkout, as deployed: static files (GET / only), metrics, access log",
		UsesPoller:  true,
		available: func() error {
			if _, err := daemonSource(); err != nil {
				return fmt.Errorf("reactord-daemon: %w: %w", ErrUnavailable, err)
			}
			return nil
		},
		start: startDaemon,
	}
}

// EnvDaemonBin names a prebuilt daemon binary to run instead of building one.
const EnvDaemonBin = "REACTORD_BENCH_DAEMON"

// daemonSource returns the directory of the reactord module (the bench module's replace
// target), where the daemon is built.
func daemonSource() (string, error) {
	if bin := os.Getenv(EnvDaemonBin); bin != "" {
		return "", nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go tool to build the daemon (or set %s): %w", EnvDaemonBin, err)
	}
	out, err := exec.Command(goTool, "list", "-m", "-f", "{{.Dir}}", "github.com/reactord/reactord").Output()
	if err != nil {
		return "", fmt.Errorf("locating the reactord module (run from bench/, or set %s): %w", EnvDaemonBin, err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "cmd", "reactord")); err != nil {
		return "", err
	}
	return dir, nil
}

var daemonBuild struct {
	once sync.Once
	bin  string
	err  error
}

// daemonBinary builds the daemon once per process into a temporary directory (or returns
// $REACTORD_BENCH_DAEMON), and exports the path to that variable so child processes of this
// one reuse it.
func daemonBinary() (string, error) {
	daemonBuild.once.Do(func() {
		if bin := os.Getenv(EnvDaemonBin); bin != "" {
			daemonBuild.bin = bin
			return
		}
		dir, err := daemonSource()
		if err != nil {
			daemonBuild.err = err
			return
		}
		tmp, err := os.MkdirTemp("", "bench-reactord-")
		if err != nil {
			daemonBuild.err = err
			return
		}
		bin := filepath.Join(tmp, "reactord")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/reactord")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			daemonBuild.err = fmt.Errorf("go build ./cmd/reactord: %w\n%s", err, out)
			return
		}
		daemonBuild.bin = bin
		_ = os.Setenv(EnvDaemonBin, bin)
	})
	return daemonBuild.bin, daemonBuild.err
}

type daemonInstance struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan error
	once sync.Once
	err  error
}

func startDaemon(ctx context.Context, o Options) (Instance, error) {
	bin, err := daemonBinary()
	if err != nil {
		return nil, fmt.Errorf("reactord-daemon: %w", err)
	}
	addr, err := concretePort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("reactord-daemon: %w", err)
	}
	dir, err := os.MkdirTemp("", "bench-daemon-")
	if err != nil {
		return nil, fmt.Errorf("reactord-daemon: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(Body), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("reactord-daemon: %w", err)
	}
	args := []string{
		"-listen", addr,
		"-root", dir,
		"-loops", strconv.Itoa(o.Loops),
		"-access-log", os.DevNull,
		"-log-format", "json",
		"-log-level", "warn",
		"-idle-timeout", "1h",
	}
	if o.Poller != "" {
		args = append(args, "-poller", o.Poller)
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("reactord-daemon: %w", err)
	}
	in := &daemonInstance{addr: addr, dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait() }()
	if err := waitServing(ctx, addr, in.done, 20*time.Second); err != nil {
		_ = in.Close()
		return nil, fmt.Errorf("reactord-daemon: %w (stderr: %s)", err, strings.TrimSpace(cmd.Stderr.(*lockedWriter).String()))
	}
	return in, nil
}

func (d *daemonInstance) Addr() string { return d.addr }
func (d *daemonInstance) PID() int     { return d.cmd.Process.Pid }

func (d *daemonInstance) Close() error {
	d.once.Do(func() {
		_ = d.cmd.Process.Signal(unix.SIGTERM)
		select {
		case err := <-d.done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				d.err = err
			}
		case <-time.After(15 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
			d.err = errors.New("reactord-daemon: did not exit within 15s of SIGTERM; killed")
		}
		if err := os.RemoveAll(d.dir); err != nil && d.err == nil {
			d.err = err
		}
	})
	return d.err
}

// lockedWriter collects a process's stderr (written by exec's copying goroutine, read on
// failure by the starter).
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
