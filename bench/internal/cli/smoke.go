package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reactord/reactord/bench/internal/child"
	"github.com/reactord/reactord/bench/internal/loadgen"
	"github.com/reactord/reactord/bench/internal/report"
	"github.com/reactord/reactord/bench/internal/servers"
	"github.com/reactord/reactord/bench/internal/syscount"
	"github.com/reactord/reactord/bench/internal/wsbench"
)

// ErrSmoke is returned when a smoke step ran but its output shows a failure.
var ErrSmoke = errors.New("smoke check failed")

func runSmoke(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "smoke", "[-keep DIR]", `
Runs every subcommand for a few seconds with tiny sizes and checks the outcome: pollers (N=100
and 500), http against every available server (C=8, P=1 and 4, one round, 0.5 s) asserting
requests > 0 and no errors, http -strace on floor when strace is installed, idle (N=200), and
ws against every WebSocket server (tiny sizes), and serve in the foreground answering one
request. Under a minute on a 2-core machine; .ci/run
calls it.`)
	keep := fs.String("keep", "", "write charts and JSON into `dir` and keep them (default: a temp dir, removed)")
	if err := parse(fs, args); err != nil {
		return err
	}
	dir := *keep
	if dir == "" {
		d, err := os.MkdirTemp("", "bench-smoke-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	step := func(name string, f func() error) error {
		t := time.Now()
		fmt.Fprintf(env.Stdout, "== smoke: %s\n", name)
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(env.Stdout, "== smoke: %s ok (%.1fs)\n\n", name, time.Since(t).Seconds())
		return nil
	}
	sub := func(run func(context.Context, Env, []string) error, args ...string) error {
		return run(ctx, Env{Stdout: env.Stdout, Stderr: env.Stderr, Stdin: env.Stdin}, args)
	}

	if err := step("pollers", func() error {
		js := filepath.Join(dir, "pollers.json")
		if err := sub(runPollers, "-n", "100,500", "-runs", "3", "-writes", "200", "-json", js, "-chart", filepath.Join(dir, "pollers.png")); err != nil {
			return err
		}
		var rows []pollerRow
		if err := readJSON(js, &rows); err != nil {
			return err
		}
		for _, r := range rows {
			if r.Pairs == 100 && (r.Skipped != "" || r.Dispatches == 0) {
				return fmt.Errorf("%w: %s N=100: %q, %d dispatches", ErrSmoke, r.Backend, r.Skipped, r.Dispatches)
			}
		}
		return fileNonEmpty(filepath.Join(dir, "pollers.png"))
	}); err != nil {
		return err
	}

	var avail []string
	for _, sv := range servers.All() {
		if sv.Available() == nil {
			avail = append(avail, sv.Name)
		}
	}
	if err := step("http ("+strings.Join(avail, ",")+")", func() error {
		js := filepath.Join(dir, "http.json")
		if err := sub(runHTTP, "-servers", strings.Join(avail, ","), "-c", "8", "-p", "1,4", "-warmup", "200ms",
			"-d", "500ms", "-rounds", "1", "-q", "-json", js, "-chart", filepath.Join(dir, "http.png")); err != nil {
			return err
		}
		return checkHTTPJSON(js)
	}); err != nil {
		return err
	}

	if syscount.Available() == nil {
		if err := step("http -strace (floor)", func() error {
			js := filepath.Join(dir, "strace.json")
			if err := sub(runHTTP, "-servers", "floor", "-c", "4", "-p", "1", "-warmup", "100ms", "-d", "300ms",
				"-rounds", "1", "-q", "-strace", "-json", js); err != nil {
				return err
			}
			if err := checkHTTPJSON(js); err != nil {
				return err
			}
			var out struct{ Summary []report.Summary }
			if err := readJSON(js, &out); err != nil {
				return err
			}
			if len(out.Summary) == 0 || out.Summary[0].SyscallsPerReq <= 0 {
				return fmt.Errorf("%w: no syscall count from strace", ErrSmoke)
			}
			return nil
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(env.Stdout, "== smoke: http -strace skipped: strace not installed")
	}

	if err := step("idle", func() error {
		return sub(runIdle, "-n", "200", "-servers", strings.Join(avail, ","), "-json", filepath.Join(dir, "idle.json"))
	}); err != nil {
		return err
	}

	if err := step("ws (every WebSocket server: echo, broadcast, idle)", func() error {
		js := filepath.Join(dir, "ws.json")
		if err := sub(runWS, "-c", "8", "-warmup", "100ms", "-d", "400ms", "-n", "16", "-k", "3", "-idle", "50",
			"-rounds", "1", "-q", "-json", js); err != nil {
			return err
		}
		var rows []wsbench.Result
		if err := readJSON(js, &rows); err != nil {
			return err
		}
		if want := 3 * len(servers.WebSocket()); len(rows) != want {
			return fmt.Errorf("%w: %d ws runs, want %d", ErrSmoke, len(rows), want)
		}
		for _, r := range rows {
			if r.Mode == wsbench.ModeEcho && r.Messages == 0 || r.Mode == wsbench.ModeBroadcast && r.BroadcastCount != 3 {
				return fmt.Errorf("%w: %s %s: %+v", ErrSmoke, r.Label, r.Mode, r)
			}
		}
		return nil
	}); err != nil {
		return err
	}

	if err := step("serve (floor, foreground)", func() error { return smokeServe(ctx, env) }); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "smoke: all subcommands ok in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// smokeServe runs `serve` in-process as a user would (foreground, no -control), sends it
// requests, and stops it by cancelling its context (what SIGINT does).
func smokeServe(ctx context.Context, env Env) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, Env{Stdout: pw, Stderr: env.Stderr, Stdin: bytes.NewReader(nil)},
			[]string{"-server", "floor", "-addr", "127.0.0.1:0"})
		_ = pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		return fmt.Errorf("%w: serve printed no READY line: %v", ErrSmoke, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, _, err := child.ParseReady(sc.Text())
	if err != nil {
		return err
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: addr, Conns: 2, Pipeline: 2, Duration: 200 * time.Millisecond,
		ExpectBody: []byte(servers.Body)})
	if err != nil {
		return err
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	if res.Requests == 0 || res.Errors.Total() > 0 {
		return fmt.Errorf("%w: serve: %d requests, errors %+v", ErrSmoke, res.Requests, res.Errors)
	}
	fmt.Fprintf(env.Stdout, "serve floor on %s: %d requests, 0 errors\n", addr, res.Requests)
	return nil
}

func checkHTTPJSON(file string) error {
	var out struct{ Summary []report.Summary }
	if err := readJSON(file, &out); err != nil {
		return err
	}
	if len(out.Summary) == 0 {
		return fmt.Errorf("%w: empty summary", ErrSmoke)
	}
	for _, s := range out.Summary {
		if s.RPS <= 0 || s.Errors > 0 || s.CPUPerReq <= 0 {
			return fmt.Errorf("%w: %s P=%d: %.0f req/s, %.2f µs/req, %d errors", ErrSmoke, s.Label, s.Pipeline, s.RPS, s.CPUPerReq, s.Errors)
		}
	}
	return nil
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func fileNonEmpty(file string) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return fmt.Errorf("%w: %s is empty", ErrSmoke, file)
	}
	return nil
}
