//go:build !race

package examples_test

// raceEnabled says the test binary was built with -race; see race_on_test.go.
const raceEnabled = false
