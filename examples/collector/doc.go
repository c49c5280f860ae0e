// Package collector holds the proof that lonelytrace moves to a real
// OpenTelemetry collector by environment variables alone: its tests start
// Jaeger (a Go tool of this module, so that Jaeger's dependencies stay out
// of lonelytrace's go.mod), run the pub/sub demo against it, and replay
// stored trace files into it. See README.md for the commands.
package collector
