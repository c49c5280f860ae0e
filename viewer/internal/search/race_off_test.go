//go:build !race

package search

// raceEnabled scales the heavier tests down under the race detector,
// which slows SQLite (compiled from C to Go) about tenfold.
const raceEnabled = false
