//go:build !race

package main

// raceEnabled is false: the test binary has no race detector, so neither does the daemon
// (it may have no cgo toolchain to build one with).
const raceEnabled = false
