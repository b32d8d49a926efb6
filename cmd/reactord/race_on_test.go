//go:build race

package main

// raceEnabled makes TestMain build the daemon with the race detector too, so the
// integration tests check the daemon's own goroutines for races.
const raceEnabled = true
