package servers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/bench/internal/tlsconf"
)

func nginxServer() Server {
	return Server{
		Name:        "nginx",
		Description: "nginx, when installed (one process: master_process off, return 200)",
		available: func() error {
			if _, err := nginxPath(); err != nil {
				return fmt.Errorf("nginx: %w: %w", ErrUnavailable, err)
			}
			return nil
		},
		TLS:   true,
		start: startNginx,
	}
}

func nginxPath() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("nginx binary not found")
}

// nginxConfig is a configuration that serves the harness's response from one process. With
// master_process off nginx runs a single process and ignores worker_processes, so the pid the
// harness samples is the one doing the work. Keep-alive limits are lifted so that nginx does
// not close connections every 1000 requests during a run.
func nginxConfig(dir, addr string, tls bool) string {
	ssl := ""
	if tls {
		// The same ground as the Go servers: TLS 1.2 and 1.3, HTTP/1.1, a full handshake per
		// new connection (no session cache, no tickets).
		ssl = fmt.Sprintf(` ssl;
        ssl_certificate %[1]s/cert.pem;
        ssl_certificate_key %[1]s/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off`, dir)
	}
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
    worker_connections 65536;
    use epoll;
}
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    server {
        listen %[2]s reuseport backlog=4096%[3]s;
        location / {
            default_type text/plain;
            return 200 "Hello, World!";
        }
    }
}
`, dir, addr, ssl)
}

type nginxInstance struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan error
	once sync.Once
	err  error
}

func startNginx(ctx context.Context, o Options) (Instance, error) {
	return startNginxConf(ctx, o, func(dir, addr string) string { return nginxConfig(dir, addr, o.TLS != "") })
}

// startNginxConf runs nginx with the configuration conf returns for its temp dir and address.
func startNginxConf(ctx context.Context, o Options, conf func(dir, addr string) string) (Instance, error) {
	bin, err := nginxPath()
	if err != nil {
		return nil, fmt.Errorf("nginx: %w: %w", ErrUnavailable, err)
	}
	if o.Loops > 1 {
		return nil, fmt.Errorf("nginx: %w: the harness runs nginx as one process (loops 1)", ErrBadOptions)
	}
	addr, err := concretePort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	dir, err := os.MkdirTemp("", "bench-nginx-")
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	if o.TLS != "" {
		cert, key, err := tlsconf.PEM(o.TLS)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "cert.pem"), cert, 0o600)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o600)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("nginx: %w", err)
		}
	}
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf(dir, addr)), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confFile, "-e", filepath.Join(dir, "error.log"))
	// nginx must not outlive the harness even if the harness is killed.
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	in := &nginxInstance{addr: addr, dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait() }()
	// Ready means answering a request, not accepting a connection: see waitServing.
	var probe *tls.Config
	if o.TLS != "" {
		probe = tlsconf.Client()
	}
	if err := waitServingTLS(ctx, addr, probe, in.done, 10*time.Second); err != nil {
		_ = in.Close()
		return nil, fmt.Errorf("nginx: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	return in, nil
}

func (n *nginxInstance) Addr() string { return n.addr }
func (n *nginxInstance) PID() int     { return n.cmd.Process.Pid }

func (n *nginxInstance) Close() error {
	n.once.Do(func() {
		// SIGTERM is nginx's fast shutdown; SIGKILL after a grace period.
		_ = n.cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		n.err = os.RemoveAll(n.dir)
	})
	return n.err
}
