#!/usr/bin/env bash
# bench/smoke.sh — what .ci/run calls for the harness: lint, test and build the bench module,
# then run every subcommand for a few seconds with tiny sizes (bench smoke checks requests > 0
# and no errors for every available server). Under a minute of smoke on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")"

echo "== bench: gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== bench: go vet"
go vet ./...

echo "== bench: staticcheck"
go tool staticcheck ./...

echo "== bench: tests"
go test -race -count=1 ./...

echo "== bench: router benchmarks, one iteration each (their answers are checked)"
go test -run '^$' -bench . -benchtime 1x ./internal/routerbench/ >/dev/null

echo "== bench: smoke of every subcommand"
bin=$(mktemp -d)/bench
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/bench
"$bin" smoke
