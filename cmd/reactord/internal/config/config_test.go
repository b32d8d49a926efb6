package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/reactor"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lastBackend names a compiled poller backend other than auto.
func lastBackend(t *testing.T) string {
	t.Helper()
	b := reactor.Pollers()
	if len(b) == 0 {
		t.Skip("no poller backend compiled for this OS")
	}
	return b[len(b)-1]
}

func TestDefaultsAreValid(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	if !reflect.DeepEqual(c.Listen, []string{"127.0.0.1:8080"}) {
		t.Fatalf("default listen = %v", c.Listen)
	}
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	got, err := Parse([]string{
		"-listen", "127.0.0.1:0", "-listen", "unix:" + filepath.Join(dir, "s.sock"),
		"-poller", lastBackend(t), "-loops", "3", "-root", dir, "-follow-symlinks", "-dir-listing", "-serve-dotfiles",
		"-log-level", "debug", "-log-format", "console", "-access-log", filepath.Join(dir, "access.log"),
		"-max-conns", "100", "-max-conns-per-ip", "16", "-header-timeout", "2s", "-read-timeout", "3s", "-idle-timeout", "4s",
		"-max-header-bytes", "8KiB", "-max-body-bytes", "2MiB", "-output-buffer", "64KiB", "-reuseport", "-shutdown-timeout", "5s",
		"-addr-file", filepath.Join(dir, "addrs"), "-admin-listen", "127.0.0.1:0", "-pid-file", filepath.Join(dir, "pid"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen: []string{"127.0.0.1:0", "unix:" + filepath.Join(dir, "s.sock")},
		Poller: lastBackend(t), Loops: 3, Root: dir, FollowSymlinks: true, DirListing: true, ServeDotfiles: true,
		LogLevel: "debug", LogFormat: "console", AccessLog: filepath.Join(dir, "access.log"),
		MaxConns: 100, MaxConnsPerIP: 16, HeaderTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second,
		MaxHeaderBytes: 8 << 10, MaxBodyBytes: 2 << 20, OutputBuffer: 64 << 10, ReusePort: true, ShutdownTimeout: 5 * time.Second,
		AddrFile: filepath.Join(dir, "addrs"), AdminListen: "127.0.0.1:0", PidFile: filepath.Join(dir, "pid"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", got, want)
	}
}

func TestFileThenFlags(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "r.toml", `
listen = ["127.0.0.1:9000", "127.0.0.1:9001"]
loops = 2
root = "`+dir+`"
dir-listing = true
serve-dotfiles = true
idle-timeout = "90s"
max-header-bytes = 4096
max-body-bytes = "1KiB"
access-log = "off"
`)
	got, err := Parse([]string{"-config", path, "-loops", "5"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Loops != 5 {
		t.Errorf("flag must override file: loops = %d", got.Loops)
	}
	if !reflect.DeepEqual(got.Listen, []string{"127.0.0.1:9000", "127.0.0.1:9001"}) {
		t.Errorf("listen from file = %v", got.Listen)
	}
	if got.Root != dir || !got.DirListing || !got.ServeDotfiles || got.IdleTimeout != 90*time.Second || got.MaxHeaderBytes != 4096 ||
		got.MaxBodyBytes != 1024 || got.AccessLog != "off" || got.ConfigFile != path {
		t.Errorf("file values not applied: %+v", got)
	}
	// A -listen on the command line replaces the file's list rather than adding to it.
	got, err = Parse([]string{"-listen", "127.0.0.1:1", "-config", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Listen, []string{"127.0.0.1:1"}) {
		t.Errorf("listen = %v, want the flag's only", got.Listen)
	}
	// A single string is accepted for listen.
	path2 := writeFile(t, dir, "single.toml", `listen = "unix:`+filepath.Join(dir, "x.sock")+`"`)
	got, err = Parse([]string{"-config", path2}, nil)
	if err != nil || !reflect.DeepEqual(got.Listen, []string{"unix:" + filepath.Join(dir, "x.sock")}) {
		t.Errorf("single listen string: %v %v", got.Listen, err)
	}
}

func TestInvalid(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "plain", "x")
	cases := []struct {
		name    string
		args    []string
		file    string // TOML body for -config, if any
		wantKey string
		wantSub string
	}{
		{"loops zero", []string{"-loops", "0"}, "", "loops", "must be ≥ 1 and ≤ 1024 (got 0)"},
		{"loops text", []string{"-loops", "many"}, "", "loops", `must be an integer (got "many")`},
		{"unknown flag", []string{"-lops", "3"}, "", "lops", "unknown flag"},
		{"flag without value", []string{"-loops"}, "", "loops", "needs a value"},
		{"stray argument", []string{"serve"}, "", "arguments", `unexpected argument "serve"`},
		{"bad listen", []string{"-listen", "nonsense"}, "", "listen", "want host:port or unix:/path"},
		{"bad port", []string{"-listen", "127.0.0.1:70000"}, "", "listen", "port must be a number"},
		{"empty unix", []string{"-listen", "unix:"}, "", "listen", "empty unix socket path"},
		{"unix dir missing", []string{"-listen", "unix:/nonexistent-dir/s.sock"}, "", "listen", "/nonexistent-dir"},
		{"duplicate listen", []string{"-listen", "127.0.0.1:1", "-listen", "127.0.0.1:1"}, "", "listen", "given twice"},
		{"poller", []string{"-poller", "kqueue2"}, "", "poller", `got "kqueue2"`},
		{"root missing", []string{"-root", filepath.Join(dir, "nope")}, "", "root", "no such file or directory"},
		{"root is file", []string{"-root", file}, "", "root", "not a directory"},
		{"log level", []string{"-log-level", "loud"}, "", "log-level", "must be debug, info, warn or error"},
		{"log format", []string{"-log-format", "xml"}, "", "log-format", "must be json, console or auto"},
		{"access log dir", []string{"-access-log", "/nonexistent-dir/a.log"}, "", "access-log", "/nonexistent-dir"},
		{"max conns", []string{"-max-conns", "-1"}, "", "max-conns", "must be ≥ 0"},
		{"max conns per ip", []string{"-max-conns-per-ip", "-1"}, "", "max-conns-per-ip", "must be ≥ 0 (0: no limit)"},
		{"max conns per ip huge", []string{"-max-conns-per-ip", "4294967296"}, "", "max-conns-per-ip", "≤ 2147483647"},
		{"max conns per ip text", []string{"-max-conns-per-ip", "many"}, "", "max-conns-per-ip", "must be an integer"},
		{"file max conns per ip", nil, "max-conns-per-ip = -3\n", "max-conns-per-ip", "must be ≥ 0 (0: no limit) and ≤ 2147483647 (got -3)"},
		{"timeout text", []string{"-idle-timeout", "soon"}, "", "idle-timeout", "must be a duration"},
		{"timeout negative", []string{"-read-timeout", "-1s"}, "", "read-timeout", "must be ≥ 0"},
		{"header bytes small", []string{"-max-header-bytes", "10"}, "", "max-header-bytes", "must be ≥ 256"},
		{"header bytes text", []string{"-max-header-bytes", "big"}, "", "max-header-bytes", "must be a size"},
		{"body negative", []string{"-max-body-bytes", "-5"}, "", "max-body-bytes", "must be ≥ 1"},
		{"body zero", []string{"-max-body-bytes", "0"}, "", "max-body-bytes", "must be ≥ 1 (got 0)"},
		{"header bytes large", []string{"-max-header-bytes", "17MiB"}, "", "max-header-bytes", "≤ 16MiB"},
		{"shutdown zero", []string{"-shutdown-timeout", "0s"}, "", "shutdown-timeout", "must be > 0"},
		{"bool text", []string{"-reuseport=maybe"}, "", "reuseport", "must be true or false"},
		{"admin listen bad", []string{"-admin-listen", "nonsense"}, "", "admin-listen", "want host:port or unix:/path"},
		{"admin listen same", []string{"-listen", "127.0.0.1:1", "-admin-listen", "127.0.0.1:1"}, "", "admin-listen", "also a listen address"},
		{"pid file dir", []string{"-pid-file", "/nonexistent-dir/r.pid"}, "", "pid-file", "/nonexistent-dir"},
		{"watch negative", []string{"-watch-config", "-1s"}, "", "watch-config", "must be ≥ 0"},
		{"watch without file", []string{"-watch-config", "5s"}, "", "watch-config", "needs a -config file"},
		{"tls listen bad", []string{"-tls-listen", "nonsense", "-tls-cert", file, "-tls-key", file}, "", "tls-listen", "want host:port or unix:/path"},
		{"tls listen same", []string{"-listen", "127.0.0.1:1", "-tls-listen", "127.0.0.1:1", "-tls-cert", file, "-tls-key", file}, "", "tls-listen", "also a plain listen address"},
		{"tls listen twice", []string{"-tls-listen", "127.0.0.1:2", "-tls-listen", "127.0.0.1:2", "-tls-cert", file, "-tls-key", file}, "", "tls-listen", "given twice"},
		{"tls without cert", []string{"-tls-listen", "127.0.0.1:2", "-tls-key", file}, "", "tls-cert", "required with -tls-listen"},
		{"tls without key", []string{"-tls-listen", "127.0.0.1:2", "-tls-cert", file}, "", "tls-key", "required with -tls-listen"},
		{"tls cert missing", []string{"-tls-listen", "127.0.0.1:2", "-tls-cert", filepath.Join(dir, "nope.pem"), "-tls-key", file}, "", "tls-cert", "no such file or directory"},
		{"tls key is dir", []string{"-tls-listen", "127.0.0.1:2", "-tls-cert", file, "-tls-key", dir}, "", "tls-key", "not a regular file"},
		{"tls cert without listen", []string{"-tls-cert", file}, "", "tls-cert", "without -tls-listen"},
		{"redirect without tls", []string{"-redirect-http"}, "", "redirect-http", "needs a -tls-listen"},
		{"hsts negative", []string{"-hsts", "-1s"}, "", "hsts", "must be ≥ 0"},
		{"config missing", []string{"-config", filepath.Join(dir, "none.toml")}, "", "config", "cannot read"},
		{"file unknown key", nil, "loops = 2\nlopps = 3\n", "lopps", "unknown key"},
		{"file nested table", nil, "[server]\nloops = 2\n", "server", "unknown key"},
		{"file wrong type", nil, `loops = "two"`, "loops", "must be an integer (got string)"},
		{"file bool type", nil, `reuseport = "yes"`, "reuseport", "must be true or false (got string)"},
		{"file duration type", nil, `idle-timeout = 5`, "idle-timeout", "must be a duration string"},
		{"file list element", nil, `listen = ["127.0.0.1:1", 2]`, "listen", "element 1 must be a string"},
		{"file syntax", nil, "loops = = 2\n", "config", "toml"},
		{"file value invalid", nil, "loops = 0\n", "loops", "got 0"},
		{"file config key", nil, `config = "/etc/x.toml"`, "config", "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"-config", writeFile(t, t.TempDir(), "c.toml", tc.file)}, args...)
			}
			_, err := Parse(args, nil)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error", err)
			}
			if ce.Key != tc.wantKey {
				t.Errorf("key = %q, want %q (error: %v)", ce.Key, tc.wantKey, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantSub) {
				t.Errorf("error %q does not contain %q", msg, tc.wantSub)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			if !strings.HasPrefix(msg, tc.wantKey+": ") {
				t.Errorf("error %q does not start with the key", msg)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"-h"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("-h: err = %v, want ErrHelp", err)
	}
	usage := out.String()
	for _, k := range append(Keys(), "config", "version") {
		if !strings.Contains(usage, "  -"+k) {
			t.Errorf("usage does not document -%s", k)
		}
	}
	for _, s := range []string{`(default "127.0.0.1:8080")`, "(default 10s)", "SIGHUP"} {
		if !strings.Contains(usage, s) {
			t.Errorf("usage lacks %q:\n%s", s, usage)
		}
	}
	// -version wins over otherwise invalid settings.
	c, err := Parse([]string{"-loops", "0", "-version"}, nil)
	if err != nil || !c.ShowVersion {
		t.Fatalf("-version: %+v %v", c, err)
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"4096", 4096, true}, {"4KiB", 4096, true}, {"2 MiB", 2 << 20, true},
		{"1GiB", 1 << 30, true}, {"10B", 10, true}, {"1.5MiB", 0, false}, {"KiB", 0, false},
		{"", 0, false}, {"9999999999GiB", 0, false}, {"-3", -3, true},
	}
	for _, tc := range cases {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	v := &sizeValue{p: new(int64)}
	for n, want := range map[int64]string{32 << 10: "32KiB", 1 << 20: "1MiB", 3 << 30: "3GiB", 1000: "1000"} {
		*v.p = n
		if v.String() != want {
			t.Errorf("size %d prints %q, want %q", n, v.String(), want)
		}
	}
}

func TestIsUnix(t *testing.T) {
	if p, ok := IsUnix("unix:/run/x.sock"); !ok || p != "/run/x.sock" {
		t.Errorf("IsUnix = %q %v", p, ok)
	}
	if _, ok := IsUnix("127.0.0.1:80"); ok {
		t.Error("tcp address taken for unix")
	}
}

// TestExampleFile keeps deploy/reactord.toml in step with the keys: every key it sets must
// exist and have the right type (its paths exist only on a server, so it is not validated).
func TestExampleFile(t *testing.T) {
	c := Defaults()
	if err := loadFile(filepath.Join("..", "..", "..", "..", "deploy", "reactord.toml"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Root != "/srv/www" || c.MaxConns != 100000 || c.MaxHeaderBytes != 32<<10 || len(c.Listen) != 2 {
		t.Errorf("example values not read: %+v", c)
	}
}

func TestChanged(t *testing.T) {
	a, b := Defaults(), Defaults()
	if got := Changed(a, b); len(got) != 0 {
		t.Fatalf("Changed(defaults, defaults) = %v", got)
	}
	b.Listen = []string{"127.0.0.1:1,127.0.0.1:2"}
	a.Listen = []string{"127.0.0.1:1", "127.0.0.1:2"}
	b.IdleTimeout = time.Minute + time.Second
	b.Root = "/srv"
	if got := Changed(a, b); !reflect.DeepEqual(got, []string{"listen", "root", "idle-timeout"}) {
		t.Errorf("Changed = %v", got)
	}
}

// TestKubernetesManifests keeps deploy/kubernetes in step with the daemon: the TOML in the
// ConfigMap must be a valid configuration, and the Deployment's grace period must cover the
// preStop sleep plus shutdown-timeout, or the kubelet would SIGKILL a drain. (The manifests'
// schema is checked by deploy/kubernetes/validate.sh.)
func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "..", "deploy", "kubernetes")
	cm, err := os.ReadFile(filepath.Join(dir, "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The block scalar after "reactord.toml: |", indented by four spaces.
	_, block, ok := strings.Cut(string(cm), "  reactord.toml: |\n")
	if !ok {
		t.Fatal("configmap.yaml has no reactord.toml block")
	}
	var toml strings.Builder
	for _, line := range strings.Split(block, "\n") {
		if line != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		toml.WriteString(strings.TrimPrefix(line, "    ") + "\n")
	}
	path := writeFile(t, t.TempDir(), "reactord.toml", toml.String())
	c, err := Parse([]string{"-config", path}, nil)
	if err != nil {
		t.Fatalf("the ConfigMap's configuration is invalid: %v\n%s", err, toml.String())
	}
	if c.AdminListen != "0.0.0.0:9090" || c.WatchConfig <= 0 || c.Listen[0] != "0.0.0.0:8080" {
		t.Errorf("ConfigMap: admin %q, watch %v, listen %v", c.AdminListen, c.WatchConfig, c.Listen)
	}

	dep, err := os.ReadFile(filepath.Join(dir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	number := func(re string) int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(string(dep))
		if m == nil {
			t.Fatalf("deployment.yaml: no match for %s", re)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	grace := time.Duration(number(`terminationGracePeriodSeconds: (\d+)`)) * time.Second
	sleep := time.Duration(number(`(?s)preStop:.*?sleep:\s+seconds: (\d+)`)) * time.Second
	if grace < sleep+c.ShutdownTimeout+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v < preStop %v + shutdown-timeout %v + 5s", grace, sleep, c.ShutdownTimeout)
	}
	for _, want := range []string{"port: admin", "path: /readyz", "path: /livez", "containerPort: 9090", "containerPort: 8080", "configMap:"} {
		if !strings.Contains(string(dep), want) {
			t.Errorf("deployment.yaml lacks %q", want)
		}
	}
	if strings.Contains(string(dep), "subPath") {
		t.Error("deployment.yaml mounts with subPath: the kubelet never updates such a mount")
	}
}
