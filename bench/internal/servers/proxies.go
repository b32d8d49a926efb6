package servers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// EnvReactord names the environment variable giving the reactord daemon binary the
// reactord-proxy server runs; the proxy subcommand builds one and sets it for its children.
const EnvReactord = "BENCH_REACTORD"

// EnvProxyArgs names an environment variable with extra daemon flags for reactord-proxy
// (space-separated), such as "-output-buffer 64KiB" for the memory run.
const EnvProxyArgs = "BENCH_REACTORD_ARGS"

func reactordBinary() (string, error) {
	if p := os.Getenv(EnvReactord); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Errorf("$%s=%s: not a file", EnvReactord, p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("reactord"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no reactord binary: set $%s (the proxy subcommand builds one)", EnvReactord)
}

func reactordProxyServer() Server {
	return Server{
		Name:        "reactord-proxy",
		Description: "the reactord daemon as a reverse proxy (-proxy /=UPSTREAM): codec/http Client pools on the loop",
		UsesPoller:  true,
		Proxy:       true,
		available: func() error {
			if _, err := reactordBinary(); err != nil {
				return fmt.Errorf("reactord-proxy: %w: %w", ErrUnavailable, err)
			}
			return nil
		},
		start: startReactordProxy,
	}
}

// processInstance is a server running as a process of its own (the daemon).
type processInstance struct {
	addr string
	cmd  *exec.Cmd
	done chan error
	once sync.Once
}

func startReactordProxy(ctx context.Context, o Options) (Instance, error) {
	if err := o.needUpstream("reactord-proxy"); err != nil {
		return nil, err
	}
	bin, err := reactordBinary()
	if err != nil {
		return nil, fmt.Errorf("reactord-proxy: %w: %w", ErrUnavailable, err)
	}
	addr, err := concretePort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("reactord-proxy: %w", err)
	}
	args := []string{"-listen", addr, "-proxy", "/=" + o.Upstream, "-loops", strconv.Itoa(o.Loops),
		"-access-log", "off", "-log-level", "warn", "-idle-timeout", "600s", "-header-timeout", "600s", "-read-timeout", "600s"}
	if o.Poller != "" {
		args = append(args, "-poller", o.Poller)
	}
	args = append(args, strings.Fields(os.Getenv(EnvProxyArgs))...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("reactord-proxy: %w", err)
	}
	in := &processInstance{addr: addr, cmd: cmd, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait() }()
	if err := waitServing(ctx, addr, in.done, 10*time.Second); err != nil {
		_ = in.Close()
		return nil, fmt.Errorf("reactord-proxy: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	return in, nil
}

func (p *processInstance) Addr() string { return p.addr }
func (p *processInstance) PID() int     { return p.cmd.Process.Pid }

func (p *processInstance) Close() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return nil
}

func nginxProxyServer() Server {
	return Server{
		Name:        "nginx-proxy",
		Description: "nginx proxy_pass to the upstream with upstream keepalive (one process), when installed",
		Proxy:       true,
		available: func() error {
			if _, err := nginxPath(); err != nil {
				return fmt.Errorf("nginx-proxy: %w: %w", ErrUnavailable, err)
			}
			return nil
		},
		start: func(ctx context.Context, o Options) (Instance, error) {
			if err := o.needUpstream("nginx-proxy"); err != nil {
				return nil, err
			}
			return startNginxConf(ctx, o, func(dir, addr string) string { return nginxProxyConfig(dir, addr, o.Upstream) })
		},
	}
}

// nginxProxyConfig is proxy_pass the way it is deployed for keep-alive upstreams: HTTP/1.1 to
// the upstream with an idle connection pool (keepalive), the Connection header cleared, and
// the usual forwarding headers, which our proxy adds too. Buffering stays nginx's default.
func nginxProxyConfig(dir, addr, upstream string) string {
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
    upstream backend {
        server %[3]s;
        keepalive 1024;
        keepalive_requests 1000000000;
        keepalive_timeout 600s;
    }
    server {
        listen %[2]s reuseport backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }
    }
}
`, dir, addr, upstream)
}

func httputilProxyServer() Server {
	return Server{
		Name:        "httputil",
		Description: "Go's httputil.ReverseProxy on net/http, with an idle pool as large as the load",
		Proxy:       true,
		start:       startHTTPUtilProxy,
	}
}

func startHTTPUtilProxy(_ context.Context, o Options) (Instance, error) {
	if err := o.needUpstream("httputil"); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("httputil: %w", err)
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: o.Upstream})
	rp.Transport = &http.Transport{
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     600 * time.Second,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	errLog, err := zap.NewStdLogAt(o.Logger, zap.DebugLevel)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("httputil: %w", err)
	}
	rp.ErrorLog = errLog
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second, ErrorLog: errLog}
	in := &netHTTPInstance{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { in.done <- srv.Serve(ln) }()
	return in, nil
}

// EnvBlobSize names the environment variable with the response size of the blob server.
const EnvBlobSize = "BENCH_BLOB_SIZE"

// blobServer is an upstream for proxy memory runs: every request gets $BENCH_BLOB_SIZE bytes
// (default 4 MiB) with a Content-Length, from one shared buffer.
func blobServer() Server {
	return Server{
		Name:        "blob",
		Description: "an upstream for proxy -slow: every request gets $BENCH_BLOB_SIZE bytes (net/http)",
		start: func(_ context.Context, o Options) (Instance, error) {
			size := int64(4 << 20)
			if v := os.Getenv(EnvBlobSize); v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("blob: %w: $%s=%q", ErrBadOptions, EnvBlobSize, v)
				}
				size = n
			}
			body := make([]byte, size)
			for i := range body {
				body[i] = 'b'
			}
			ln, err := net.Listen("tcp", o.Addr)
			if err != nil {
				return nil, fmt.Errorf("blob: %w", err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Length"] = []string{strconv.FormatInt(size, 10)}
				w.Header()["Content-Type"] = []string{"application/octet-stream"}
				_, _ = w.Write(body)
			}), ReadHeaderTimeout: 30 * time.Second}
			in := &netHTTPInstance{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
			go func() { in.done <- srv.Serve(ln) }()
			return in, nil
		},
	}
}
