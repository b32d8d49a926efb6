package accesslog

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLoggerLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "access.log")
	l, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Enabled() {
		t.Fatal("file logger disabled")
	}
	l.Log([]byte("GET"), []byte("/a%20b?x=\"y\""), 206, 1234, 1500*time.Microsecond, netip.MustParseAddrPort("127.0.0.1:5555"))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, p)
	if len(got) != 1 {
		t.Fatalf("%d lines", len(got))
	}
	m := got[0]
	want := map[string]any{"method": "GET", "path": "/a%20b?x=\"y\"", "status": 206.0, "bytes": 1234.0, "duration": 0.0015, "remote": "127.0.0.1:5555"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if _, ok := m["ts"].(string); !ok {
		t.Errorf("no ts: %v", m)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOffAndErrors(t *testing.T) {
	l, err := New(Off)
	if err != nil || l != nil {
		t.Fatalf("off: %v %v", l, err)
	}
	// A nil logger is usable.
	l.Log([]byte("GET"), []byte("/"), 200, 1, time.Millisecond, netip.AddrPort{})
	if l.Enabled() || l.Flush() != nil || l.Reopen() != nil || l.Close() != nil {
		t.Fatal("nil logger misbehaves")
	}
	if _, err := New(""); !errors.Is(err, ErrDestination) {
		t.Errorf("empty: %v", err)
	}
	if _, err := New(filepath.Join(t.TempDir(), "missing", "a.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := OpenFile(""); err == nil {
		t.Error("OpenFile(\"\") succeeded")
	}
	s, err := New(Stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("stdout flush: %v", err)
	}
	if err := s.Reopen(); err != nil {
		t.Errorf("stdout reopen: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("stdout close: %v", err)
	}
}

// TestReopenRotation performs logrotate's dance: rename, reopen, and checks each line lands
// in the file that was current when it was logged.
func TestReopenRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "access.log")
	l, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log([]byte("GET"), []byte("/before"), 200, 1, time.Millisecond, netip.AddrPort{})
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	// Before Reopen, lines still go to the renamed file (same descriptor).
	l.Log([]byte("GET"), []byte("/between"), 200, 1, time.Millisecond, netip.AddrPort{})
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log([]byte("GET"), []byte("/after"), 200, 1, time.Millisecond, netip.AddrPort{})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	old, cur := lines(t, p+".1"), lines(t, p)
	if len(old) != 2 || old[0]["path"] != "/before" || old[1]["path"] != "/between" {
		t.Errorf("rotated file: %v", old)
	}
	if len(cur) != 1 || cur[0]["path"] != "/after" {
		t.Errorf("new file: %v", cur)
	}
}

func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.log")
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err == nil {
		t.Fatal("Reopen succeeded with the directory gone")
	}
	if _, err := f.Write([]byte("still here\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(moved, "a.log"))
	if string(b) != "still here\n" {
		t.Errorf("old file holds %q", b)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, op := range []func() error{
		func() error { _, err := f.Write([]byte("x")); return err },
		f.Sync, f.Reopen, f.Close,
	} {
		if err := op(); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	}
	if f.Path() != p {
		t.Errorf("Path = %q", f.Path())
	}
}

// TestConcurrentLogAndReopen runs writers against repeated rotations; under -race it checks
// the locking, and every line must be in one of the files, whole.
func TestConcurrentLogAndReopen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "access.log")
	l, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	const writers, per = 4, 500
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				l.Log([]byte("GET"), []byte("/x"), 200, int64(i), time.Microsecond, netip.AddrPort{})
			}
		}()
	}
	for i := 0; i < 5; i++ {
		if err := os.Rename(p, p+"."+string(rune('a'+i))); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err := l.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		total += len(lines(t, filepath.Join(dir, e.Name())))
	}
	if total != writers*per {
		t.Errorf("%d lines across files, want %d", total, writers*per)
	}
}

// BenchmarkLog measures the per-request cost on the hot path: encoding into the buffer.
func BenchmarkLog(b *testing.B) {
	l, err := New(filepath.Join(b.TempDir(), "bench.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	method, path := []byte("GET"), []byte("/static/app.js")
	remote := netip.MustParseAddrPort("127.0.0.1:51234")
	b.ReportAllocs()
	for b.Loop() {
		l.Log(method, path, 200, 48213, 183*time.Microsecond, remote)
	}
}

func TestAppendAddr(t *testing.T) {
	cases := []struct {
		a    netip.AddrPort
		want string
	}{
		{netip.AddrPort{}, ""}, // a Unix-socket client
		{netip.MustParseAddrPort("10.1.2.3:80"), "10.1.2.3:80"},
		{netip.MustParseAddrPort("[::1]:8080"), "[::1]:8080"},
		{netip.MustParseAddrPort("[2001:db8::1]:443"), "[2001:db8::1]:443"},
	}
	for _, c := range cases {
		if got := string(appendAddr(nil, c.a)); got != c.want {
			t.Errorf("appendAddr(%v) = %q, want %q", c.a, got, c.want)
		}
	}
}
