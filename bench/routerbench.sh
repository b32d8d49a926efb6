#!/usr/bin/env bash
# routerbench.sh: the router benchmarks (internal/routerbench) in interleaved rounds, and the
# median over rounds of each peer's time relative to reactord's in the same round.
#
#   bash routerbench.sh [rounds] [benchtime]      # defaults: 5 rounds of 300ms per benchmark
#
# Every round runs every router on every lookup back to back, so a load change on a shared
# machine moves all of them in that round; the ratios are what to read. docs/BENCHMARKS.md
# ("Routing") quotes its output.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-5}
benchtime=${2:-300ms}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -c -o "$out.test" ./internal/routerbench/ >/dev/null
for r in $(seq 1 "$rounds"); do
  "$out.test" -test.run '^$' -test.bench . -test.benchmem -test.benchtime "$benchtime" \
    | awk -v r="$r" '/^Benchmark/ && $4 == "ns/op" { sub(/-[0-9]+$/, "", $1); print r, $1, $3, $5, $7 }' >>"$out"
done
rm -f "$out.test"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) after $rounds rounds"
awk '
function median(list,   n, a, i, j, t) {
  n = split(list, a, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  split($2, p, "/")            # Benchmark<Level>/<lookup>/<router>
  key = p[1] "/" p[2]; peer = p[3]
  ns[$1, key, peer] = $3; bytes[key, peer] = $4; allocs[key, peer] = $5
  if (!(key in keys)) { keys[key] = 1; korder[++nk] = key }
  peers[key, peer] = 1; round[$1] = 1
  if (!(peer in seen)) { seen[peer] = 1; order[++np] = peer }
}
END {
  printf "%-34s %-18s %10s %8s %7s %9s\n", "benchmark", "router", "ns/op", "B/op", "allocs", "ratio"
  for (k = 1; k <= nk; k++) {
    key = korder[k]
    base = ""
    for (i = 1; i <= np; i++) if ((key, order[i]) in peers && order[i] ~ /^reactord/) base = order[i]
    for (i = 1; i <= np; i++) {
      peer = order[i]
      if (!((key, peer) in peers)) continue
      t = ""; r = ""
      for (rd in round) {
        t = t " " ns[rd, key, peer]
        if (base != "") r = r " " ns[rd, key, peer] / ns[rd, key, base]
      }
      printf "%-34s %-18s %10.1f %8d %7d %8.2fx\n", key, peer, median(t), bytes[key, peer], allocs[key, peer], median(r)
    }
  }
}' "$out"
