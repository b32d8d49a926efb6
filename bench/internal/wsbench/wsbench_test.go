package wsbench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/bench/internal/servers"
	"github.com/reactord/reactord/internal/testsupport"
)

// TestEveryServer drives each WebSocket server in-process the way `bench ws` does: the
// handshake, echo round trips on several connections, and broadcasts reaching every one.
func TestEveryServer(t *testing.T) {
	for _, sv := range servers.WebSocket() {
		t.Run(sv.Name, func(t *testing.T) {
			if sv.Name == "ws-nbio" && raceDetector {
				// The same report as the servers test's nbio case, from the same nbhttp engine:
				// a connection's address written on its accept goroutine and read on a poller
				// goroutine after an epoll hand-off the detector cannot see (lesismal/nbio#495).
				// bench smoke drives ws-nbio without -race.
				t.Skip("ws-nbio under -race: a report the detector makes inside nbio (lesismal/nbio#495); run without -race")
			}
			ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(30*time.Second))
			defer cancel()
			inst, err := sv.Start(ctx, servers.Options{Addr: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close()
			// Every connection must echo. A 300 ms window in which a stalled machine echoed
			// fewer messages than there are connections proves nothing: it is run again, on
			// fresh connections (the last window leaves an echo in flight on each), until the
			// scaled deadline. An error fails at once.
			giveUp := testsupport.Deadline(20 * time.Second)
			for attempt := 1; ; attempt++ {
				n, err := echoWindow(ctx, t, inst.Addr(), 8, 300*time.Millisecond)
				if err != nil {
					t.Fatalf("echo: %v", err)
				}
				if n >= 8 {
					break
				}
				if time.Now().After(giveUp) {
					t.Fatalf("echo: %d messages in the last 300ms window over 8 connections (%d windows)", n, attempt)
				}
				t.Logf("window %d: %d messages over 8 connections; again", attempt, n)
			}
		})
	}
}

// echoWindow dials k connections to addr, counts the echoes of one runEcho window of d,
// drains the echo left in flight on each and closes them.
func echoWindow(ctx context.Context, t *testing.T, addr string, k int, d time.Duration) (int64, error) {
	conns, err := dialMany(ctx, addr, k)
	if err != nil {
		return 0, err
	}
	defer closeAll(conns)
	res, err := runEcho(ctx, conns, 0, d, func() {}, func() {})
	if err != nil {
		return 0, err
	}
	// The echo run leaves one answer in flight per connection: drain it.
	if _, err := runEcho(ctx, conns, 0, 0, func() {}, func() {}); err != nil && !strings.Contains(err.Error(), "twice") {
		t.Logf("drain: %v", err)
	}
	return res.Messages, nil
}

func TestReportRatios(t *testing.T) {
	var b strings.Builder
	Markdown(&b, []Result{
		{Label: "ws-reactord", Mode: ModeEcho, Round: 1, CPUPerMsg: 10, MsgPerSec: 100},
		{Label: "ws-peer", Mode: ModeEcho, Round: 1, CPUPerMsg: 20, MsgPerSec: 50},
		{Label: "ws-reactord", Mode: ModeEcho, Round: 2, CPUPerMsg: 30, MsgPerSec: 100},
		{Label: "ws-peer", Mode: ModeEcho, Round: 2, CPUPerMsg: 40, MsgPerSec: 50},
	})
	out := b.String()
	// Per-round ratios 0.5 and 0.75: their median is 0.625, not the ratio of medians 20/30.
	if !strings.Contains(out, "server CPU µs/msg: 0.62× the best peer (ws-peer") && !strings.Contains(out, "server CPU µs/msg: 0.63× the best peer (ws-peer") {
		t.Fatalf("report:\n%s", out)
	}
	if !strings.Contains(out, "msg/s: 2.00× the best peer") {
		t.Fatalf("report:\n%s", out)
	}
}

func TestSourceAddresses(t *testing.T) {
	seen := map[string]bool{}
	for k := int64(0); k < 70000; k += 97 {
		ip := sourceAddr(k)
		if ip[12] != 127 || ip[15] == 0 || ip[15] == 255 {
			t.Fatalf("address %d: %v", k, ip)
		}
		if seen[ip.String()] {
			t.Fatalf("address %d: %v repeated", k, ip)
		}
		seen[ip.String()] = true
	}
}
