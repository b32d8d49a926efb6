// Package hardening is reactord's adversarial test suite (issue 6): request smuggling and
// malformed framing, slowloris, connection floods past RLIMIT_NOFILE, slow readers, client
// faults, graceful shutdown under load, and a soak. Every test drives the real daemon binary,
// built from ./cmd/reactord once per run, over loopback TCP and reads its descriptors, memory
// and CPU from /proc; each prints "FIGURE:" lines with the measured values that
// docs/RELIABILITY.md records.
//
// The package holds no code of its own: everything is in the _test.go files, which build on
// Linux only (they read the daemon's descriptors, limits and CPU time from /proc).
//
//	go test -race ./test/hardening/                          # the default bounded run
//	REACTORD_LONG=1 go test ./test/hardening/ -run SlowReader -v   # the full 60 s slow reader
//	REACTORD_SOAK=10m go test ./test/hardening/ -run TestSoak -v -timeout 20m
package hardening
