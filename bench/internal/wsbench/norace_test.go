//go:build !race

package wsbench

// raceDetector is true when the tests run with -race.
const raceDetector = false
