//go:build !race

package servers

// raceDetector is true when the tests run with -race.
const raceDetector = false
