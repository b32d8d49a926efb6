//go:build race

package examples_test

// raceEnabled says the test binary was built with -race: the examples are then built with
// -race too, so a data race in an example (or in the packages it embeds) fails the test.
const raceEnabled = true
