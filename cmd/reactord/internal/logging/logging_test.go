package logging

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(int(f.Fd())) {
		t.Error("a regular file is a terminal")
	}
	if IsTerminal(-1) {
		t.Error("fd -1 is a terminal")
	}
	// A pseudo-terminal is one, when the machine has /dev/ptmx.
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptm.Close()
	if !IsTerminal(int(ptm.Fd())) {
		t.Error("the pty master is not a terminal")
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		level, format string
		json          bool
		debug         bool
		err           error
	}{
		{"info", "json", true, false, nil},
		{"debug", "auto", true, true, nil}, // a file is not a terminal: auto means json
		{"warn", "console", false, false, nil},
		{"error", "json", true, false, nil},
		{"loud", "json", false, false, ErrLevel},
		{"info", "xml", false, false, ErrFormat},
	}
	for i, tc := range cases {
		p := filepath.Join(dir, tc.level+tc.format)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		log, err := New(tc.level, tc.format, f)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("case %d: err = %v, want %v", i, err, tc.err)
			}
			f.Close()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("dbg")
		log.Error("boom")
		f.Close()
		b, _ := os.ReadFile(p)
		out := string(b)
		if strings.Contains(out, "dbg") != tc.debug {
			t.Errorf("case %d: debug line present=%v, want %v:\n%s", i, !tc.debug, tc.debug, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		var m map[string]any
		isJSON := json.Unmarshal([]byte(last), &m) == nil
		if isJSON != tc.json {
			t.Errorf("case %d: json=%v, want %v: %q", i, isJSON, tc.json, last)
		}
		if tc.json && (m["msg"] != "boom" || m["level"] != "error" || m["ts"] == nil) {
			t.Errorf("case %d: fields %v", i, m)
		}
	}
	if _, err := New("info", "json", nil); !errors.Is(err, ErrNilFile) {
		t.Errorf("nil file: %v", err)
	}
}

// TestNewAtLevelChanges is what a configuration reload relies on: the level given to NewAt
// can be changed while the logger runs.
func TestNewAtLevelChanges(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lvl, err := ParseLevel("warn")
	if err != nil {
		t.Fatal(err)
	}
	level := zap.NewAtomicLevelAt(lvl)
	log, err := NewAt(level, "json", f)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	level.SetLevel(zapcore.DebugLevel)
	log.Debug("shown")
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hidden") || !strings.Contains(string(b), "shown") {
		t.Errorf("log after the level change:\n%s", b)
	}
	if _, err := ParseLevel("loud"); !errors.Is(err, ErrLevel) {
		t.Errorf("ParseLevel(loud) = %v", err)
	}
	if _, err := NewAt(level, "xml", f); !errors.Is(err, ErrFormat) {
		t.Errorf("NewAt(xml) = %v", err)
	}
}
