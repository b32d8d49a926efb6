package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Zero-downtime binary upgrade, as nginx does it.
//
// On SIGUSR2 the running process starts its executable again (the same path, so a package
// manager's new file) with the same command line, and passes it its listening sockets as
// descriptors 3, 4, ... (exec.Cmd.ExtraFiles), described in $REACTORD_UPGRADE, plus the write
// end of a pipe. The new process reads its configuration, serves the sockets meant for the
// addresses it is configured with (it opens any new address, and closes the sockets of
// addresses it no longer has), writes "ready" on the pipe and rewrites the pid file. Until
// then both processes hold the sockets and the old one keeps accepting, so connections queued
// in the kernel are served by one or the other and never refused. Once the new process is
// ready the old one tells systemd (MAINPID=), stops accepting, answers its clients' next
// requests with "Connection: close", lets in-flight responses finish within -shutdown-timeout,
// and exits.
//
// If the new process exits before it is ready (a bad configuration, a binary that does not
// start), the pipe reports end-of-file, the error is logged, and the old process goes on
// serving as if nothing happened; if it is not ready within upgradeTimeout it is sent SIGTERM.
// One upgrade runs at a time; the new process can be upgraded in turn as soon as it is ready.

// upgradeTimeout bounds the time the new process has to report it is ready.
const upgradeTimeout = 30 * time.Second

// readyMessage is what the new process writes on the readiness pipe.
const readyMessage = "ready\n"

// upgrade is an upgrade in progress: the new process, and where its outcome arrives.
type upgrade struct {
	cmd  *exec.Cmd
	done chan upgradeResult
}

type upgradeResult struct {
	pid int
	err error
}

func (u *upgrade) pid() int { return u.cmd.Process.Pid }

// abort stops the new process (SIGTERM: it drains what it accepted, like any shutdown).
func (u *upgrade) abort() {
	u.cmd.Process.Signal(unix.SIGTERM)
}

var errNoExecutable = errors.New("the executable's path is unknown")

// startUpgrade starts the new process, or logs why it cannot. The outcome arrives on
// d.upgrade.done.
func (d *daemon) startUpgrade() {
	d.log.Info("upgrade: starting the new binary", zap.String("binary", d.exe), zap.Strings("args", d.args))
	u, err := d.spawn()
	if err != nil {
		d.log.Error("upgrade failed; this process keeps serving", zap.String("binary", d.exe), zap.Error(err))
		return
	}
	d.upgrade = u
}

func (d *daemon) spawn() (*upgrade, error) {
	if d.exe == "" {
		return nil, errNoExecutable
	}
	socks, err := handOver(d.cur.srv.Reactor(), d.cur.groups)
	if err != nil {
		return nil, fmt.Errorf("duplicate the listening sockets: %w", err)
	}
	if d.admin != nil {
		more, err := handOver(d.admin.srv.Reactor(), d.admin.groups)
		if err != nil {
			closeSockets(socks)
			return nil, fmt.Errorf("duplicate the admin socket: %w", err)
		}
		socks = append(socks, more...)
	}
	r, w, err := os.Pipe()
	if err != nil {
		closeSockets(socks)
		return nil, err
	}
	env, err := json.Marshal(upgradeEnv{Sockets: socks, Ready: listenFDsStart + len(socks), Parent: os.Getpid()})
	if err != nil {
		closeSockets(socks)
		r.Close()
		w.Close()
		return nil, err
	}
	cmd := exec.Command(d.exe, d.args...)
	cmd.Env = append(childEnviron(), envUpgrade+"="+string(env))
	cmd.Stdout, cmd.Stderr = os.Stdout, d.stderr
	for _, s := range socks {
		// The duplicates are non-blocking, so os.NewFile leaves them so, and exec's call to
		// Fd does not switch the shared sockets to blocking mode under our loops.
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(s.FD), s.Role+":"+s.Spec))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	err = cmd.Start()
	for _, f := range cmd.ExtraFiles {
		f.Close() // the child has its own copies; ours would keep the pipe from reporting EOF
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	u := &upgrade{cmd: cmd, done: make(chan upgradeResult, 1)}
	go u.await(r)
	return u, nil
}

// await reads the readiness pipe and reports the outcome.
func (u *upgrade) await(r *os.File) {
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(upgradeTimeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err == nil && line == readyMessage {
		// The new process runs on; it is reaped by whoever outlives this one (init, or
		// systemd as the unit's subreaper).
		u.done <- upgradeResult{pid: u.cmd.Process.Pid}
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		u.abort()
		go u.cmd.Wait()
		u.done <- upgradeResult{err: fmt.Errorf("the new process (pid %d) was not ready within %v; sent it SIGTERM", u.cmd.Process.Pid, upgradeTimeout)}
		return
	}
	werr := u.cmd.Wait()
	if werr == nil {
		werr = errors.New("exit status 0")
	}
	u.done <- upgradeResult{err: fmt.Errorf("the new process (pid %d) exited before it was ready: %w", u.cmd.Process.Pid, werr)}
}

// childEnviron is the environment of the new process: ours, without the variables that
// described descriptors passed to us (they mean nothing to it).
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case envListenPID, envListenFDs, envListenFDNames, envUpgrade:
			continue
		}
		env = append(env, kv)
	}
	return env
}
