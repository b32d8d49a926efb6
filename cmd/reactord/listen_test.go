package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveStaleSocket(t *testing.T) {
	dir := t.TempDir()

	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	sl.Close()

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{live, stale, plain, filepath.Join(dir, "absent")} {
		if err := removeStaleSocket(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live socket removed: %v", err)
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("stale socket kept: %v", err)
	}
	if _, err := os.Stat(plain); err != nil {
		t.Errorf("regular file removed: %v", err)
	}
}

func TestAddrFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "addrs")
	addrs := []string{
		formatAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}),
		formatAddr(&net.UnixAddr{Name: "/run/r.sock", Net: "unix"}),
	}
	if err := writeAddrFile(p, addrs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "127.0.0.1:8080\nunix:/run/r.sock\n" {
		t.Fatalf("addr file %q %v", b, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := writeAddrFile(filepath.Join(p, "sub", "x"), addrs); err == nil {
		t.Error("writing under a missing directory succeeded")
	}
	if n, a := listenSpec("unix:/x.sock"); n != "unix" || a != "/x.sock" {
		t.Errorf("listenSpec unix: %s %s", n, a)
	}
	if n, a := listenSpec("[::1]:80"); n != "tcp" || a != "[::1]:80" {
		t.Errorf("listenSpec tcp: %s %s", n, a)
	}
}
