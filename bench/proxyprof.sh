#!/usr/bin/env bash
# proxyprof.sh: a CPU profile of the reactord daemon as a reverse proxy under bench load, in the
# shape `bench proxy` measures it — the proxy (reactord -proxy /=UPSTREAM, one loop,
# GOMAXPROCS=1) on CPU 0, the fasthttp upstream and the load generator on CPU 1.
#
#   bash proxyprof.sh [P] [seconds]      # defaults: P=1 (pipelining depth), 8 s of samples
#
# Needs perf (linux-perf) and permission to profile a process of this user
# (kernel.perf_event_paranoid ≤ 1, or root). Prints the kernel/user split, the hottest symbols
# and the inclusive share of the call paths docs/BENCHMARKS.md ("What is in the way at P=1")
# discusses; the perf data stays in $TMPDIR for perf report.
set -euo pipefail
cd "$(dirname "$0")"
P=${1:-1}
secs=${2:-8}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
go build -o "$dir/bench" ./cmd/bench
(cd .. && go build -o "$dir/reactord" ./cmd/reactord)
up=127.0.0.1:19101
px=127.0.0.1:19102
GOMAXPROCS=1 taskset -c 1 "$dir/bench" serve -server fasthttp -addr "$up" >"$dir/upstream.log" 2>&1 &
pids+=($!)
GOMAXPROCS=1 taskset -c 0 "$dir/reactord" -listen "$px" -proxy "/=$up" -loops 1 -access-log off -log-level warn >"$dir/proxy.log" 2>&1 &
rd=$!
pids+=($rd)
for _ in $(seq 50); do curl -fsS -o /dev/null "http://$px/" 2>/dev/null && break; sleep 0.1; done
GOMAXPROCS=1 taskset -c 1 "$dir/bench" http -target "$px" -pid "$rd" -c 64 -p "$P" -warmup 1s -d $((secs + 6))s -rounds 1 >"$dir/load.out" 2>&1 &
load=$!
sleep 3 # the load is warm and steady before sampling starts
perf record -e cpu-clock -F 2000 -g -p "$rd" -o "$dir/perf.data" -- sleep "$secs" >/dev/null 2>&1
wait "$load"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -E '^round' "$dir/load.out")"
perf report -i "$dir/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -E '^ +[0-9]' | head -4
perf report -i "$dir/perf.data" --no-children --sort sym -g none 2>/dev/null | grep -E '^ +[0-9]' | head -25
echo "inclusive:"
perf report -i "$dir/perf.data" --children --sort sym -g none 2>/dev/null |
  grep -E '\] (runtime\.sysmon|.*\(\*Loop\)\.(flushDirty|wait)|.*\(\*Conn\)\.read|net_rx_action|exit_to_user_mode_loop|__x64_sys_(nanosleep|epoll_pwait)|.*\(\*conn\)\.onData|.*\(\*upConn\)\.OnData|.*\(\*Proxy\)\.Handle) *$' || true
echo "perf data: $dir/perf.data"
trap - EXIT
cleanup
