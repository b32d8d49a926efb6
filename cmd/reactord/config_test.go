package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runBinary runs reactord to completion and returns stdout, stderr and the exit code.
func runBinary(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runBinaryWith(t, startOpts{}, args...)
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknownKey, []byte("loops = 2\nlisten-addr = \"127.0.0.1:1\"\n"), 0o644)
	badType := filepath.Join(dir, "type.toml")
	os.WriteFile(badType, []byte("idle-timeout = 30\n"), 0o644)
	syntax := filepath.Join(dir, "syntax.toml")
	os.WriteFile(syntax, []byte("loops = [\n"), 0o644)

	// A port the test holds: if reactord bound anything before validating, it would fail
	// with "address already in use" instead of naming the bad key.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.Addr().String()

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-listen", busy, "-loops", "0"}, "reactord: invalid config: loops: must be ≥ 1 and ≤ 1024 (got 0)"},
		{[]string{"-listen", busy, "-poller", "kqueue9"}, `reactord: invalid config: poller: must be auto or one of`},
		{[]string{"-listen", busy, "-root", filepath.Join(dir, "missing")}, "reactord: invalid config: root: " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{[]string{"-listen", "localhost"}, `reactord: invalid config: listen: "localhost": want host:port or unix:/path`},
		{[]string{"-idle-timeout", "forever"}, `reactord: invalid config: idle-timeout: must be a duration`},
		{[]string{"-log-level", "chatty"}, `reactord: invalid config: log-level: must be debug, info, warn or error (got "chatty")`},
		{[]string{"-access-log", "/nonexistent/dir/access.log"}, `reactord: invalid config: access-log: directory /nonexistent/dir`},
		{[]string{"-max-header-bytes", "1"}, `reactord: invalid config: max-header-bytes: must be ≥ 256`},
		{[]string{"-shutdown-timeout", "0s"}, `reactord: invalid config: shutdown-timeout: must be > 0`},
		{[]string{"-bogus"}, `reactord: invalid config: bogus: unknown flag (see -h)`},
		{[]string{"-listen", busy, "-config", unknownKey}, `reactord: invalid config: listen-addr: unknown key in ` + unknownKey},
		{[]string{"-config", badType}, `reactord: invalid config: idle-timeout: must be a duration string such as "10s" (got integer)`},
		{[]string{"-config", syntax}, `reactord: invalid config: config: ` + syntax + `: toml:`},
		{[]string{"-config", filepath.Join(dir, "none.toml")}, `reactord: invalid config: config: cannot read`},
	}
	for _, tc := range cases {
		stdout, stderr, code := runBinary(t, tc.args...)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2 (stderr %q)", tc.args, code, stderr)
		}
		if stdout != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, stdout)
		}
		if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
			t.Errorf("%v: stderr is not exactly one line: %q", tc.args, stderr)
		}
		if !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("%v:\n got %q\nwant prefix %q", tc.args, stderr, tc.want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	stdout, stderr, code := runBinary(t, "-version")
	if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "reactord v0.0.0-test (go") {
		t.Errorf("-version: %d %q %q", code, stdout, stderr)
	}
	stdout, _, code = runBinary(t, "-h")
	if code != 0 {
		t.Errorf("-h exit code %d", code)
	}
	for _, flag := range []string{"-listen ADDR", "-poller NAME", "-loops N", "-root DIR", "-follow-symlinks", "-dir-listing", "-serve-dotfiles",
		"-log-level LEVEL", "-log-format FORMAT", "-access-log DEST", "-max-conns N", "-header-timeout DURATION",
		"-read-timeout DURATION", "-idle-timeout DURATION", "-max-header-bytes SIZE", "-max-body-bytes SIZE",
		"-reuseport", "-shutdown-timeout DURATION", "-addr-file FILE", "-config FILE", "-version"} {
		if !strings.Contains(stdout, "  "+flag+"\n") {
			t.Errorf("-h does not document %q", flag)
		}
	}
}
