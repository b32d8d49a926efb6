package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestProxyFlags(t *testing.T) {
	got, err := Parse([]string{"-proxy", "/api/=127.0.0.1:9000,127.0.0.1:9001", "-proxy", "/=unix:/run/app.sock"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []ProxyRoute{
		{Prefix: "/api/", Upstreams: []string{"127.0.0.1:9000", "127.0.0.1:9001"}},
		{Prefix: "/", Upstreams: []string{"unix:/run/app.sock"}},
	}
	if !reflect.DeepEqual(got.Proxy, want) {
		t.Fatalf("got %+v", got.Proxy)
	}
}

func TestProxyFile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.toml", `
[[proxy]]
prefix = "/api/"
host = "api.example.com"
upstreams = ["127.0.0.1:9000", "[::1]:9001"]
balance = "least-conn"
max-fails = 5
fail-timeout = "30s"
connect-timeout = "2s"
header-timeout = "20s"
read-timeout = "40s"
idle-timeout = "90s"
max-conns = 100
max-idle = 8
pipeline = 16
health-check = "/healthz"
health-interval = "3s"
health-timeout = "1s"

[[proxy]]
prefix = "/"
upstreams = "unix:/run/app.sock"
`)
	got, err := Parse([]string{"-config", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []ProxyRoute{
		{Host: "api.example.com", Prefix: "/api/", Upstreams: []string{"127.0.0.1:9000", "[::1]:9001"}, Balance: "least-conn",
			MaxFails: 5, FailTimeout: 30 * time.Second, ConnectTimeout: 2 * time.Second, HeaderTimeout: 20 * time.Second,
			ReadTimeout: 40 * time.Second, IdleTimeout: 90 * time.Second, MaxConns: 100, MaxIdle: 8, Pipeline: 16,
			HealthCheck: "/healthz", HealthInterval: 3 * time.Second, HealthTimeout: time.Second},
		{Prefix: "/", Upstreams: []string{"unix:/run/app.sock"}},
	}
	if !reflect.DeepEqual(got.Proxy, want) {
		t.Fatalf("got  %+v\nwant %+v", got.Proxy, want)
	}
	// A -proxy flag replaces the file's routes, as -listen does.
	got, err = Parse([]string{"-config", path, "-proxy", "/x=127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Proxy) != 1 || got.Proxy[0].Prefix != "/x" {
		t.Fatalf("flag did not replace the file's routes: %+v", got.Proxy)
	}
}

func TestProxyErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		file string
		want string
	}{
		{"no equals", []string{"-proxy", "/api"}, "", "PREFIX=UPSTREAM"},
		{"relative prefix", []string{"-proxy", "api=127.0.0.1:1"}, "", "must start with /"},
		{"no port", []string{"-proxy", "/=127.0.0.1"}, "", "host:port"},
		{"port 0", []string{"-proxy", "/=127.0.0.1:0"}, "", "1..65535"},
		{"scheme", []string{"-proxy", "/=http://127.0.0.1:1"}, "", "without a scheme"},
		{"relative unix path", []string{"-proxy", "/=unix:app.sock"}, "", "absolute"},
		{"empty upstream", []string{"-proxy", "/=127.0.0.1:1,"}, "", "upstream"},
		{"twice", []string{"-proxy", "/=127.0.0.1:1", "-proxy", "/=127.0.0.1:2"}, "", "given twice"},
		{"unknown key", nil, "[[proxy]]\nprefix = \"/\"\nupstreams = [\"127.0.0.1:1\"]\nweight = 3\n", "unknown key \"weight\""},
		{"bad balance", nil, "[[proxy]]\nprefix = \"/\"\nupstreams = [\"127.0.0.1:1\"]\nbalance = \"random\"\n", "round-robin or least-conn"},
		{"negative timeout", nil, "[[proxy]]\nprefix = \"/\"\nupstreams = [\"127.0.0.1:1\"]\nheader-timeout = \"-1s\"\n", "header-timeout must be ≥ 0"},
		{"wrong type", nil, "[[proxy]]\nprefix = \"/\"\nupstreams = [\"127.0.0.1:1\"]\nmax-conns = \"many\"\n", "max-conns"},
		{"not a table", nil, "proxy = \"/=127.0.0.1:1\"\n", "[[proxy]] tables"},
		{"no upstream", nil, "[[proxy]]\nprefix = \"/\"\n", "no upstream"},
		{"relative health path", nil, "[[proxy]]\nprefix = \"/\"\nupstreams = [\"127.0.0.1:1\"]\nhealth-check = \"h\"\n", "health-check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = []string{"-config", writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".toml", tc.file)}
			}
			_, err := Parse(args, nil)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "proxy") {
				t.Fatalf("got %v, want a proxy error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatal("multi-line error")
			}
		})
	}
}

func TestOutputBuffer(t *testing.T) {
	c, err := Parse([]string{"-output-buffer", "256KiB"}, nil)
	if err != nil || c.OutputBuffer != 256<<10 {
		t.Fatalf("%v %d", err, c.OutputBuffer)
	}
	if Defaults().OutputBuffer != 1<<20 {
		t.Fatal("default output-buffer is not the reactor's 1 MiB")
	}
	for _, v := range []string{"1KiB", "2GiB", "-1"} {
		if _, err := Parse([]string{"-output-buffer", v}, nil); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "output-buffer") {
			t.Fatalf("-output-buffer %s: %v", v, err)
		}
	}
}
