//go:build race

package load_test

// raceEnabled is set when the tests run under the race detector, which
// makes the writer about ten times slower.
const raceEnabled = true
