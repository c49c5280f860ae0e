package exporter

import (
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// WithMaintainEvery sets how often an idle writer wakes for maintenance
// (one second outside tests), so that tests of retention and of a file
// that vanishes need not wait.
func WithMaintainEvery(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.maintainEvery = d
		}
		return c
	})
}

// WithRetentionStep sets the fewest spans one retention step deletes.
func WithRetentionStep(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.retentionStep = n
		}
		return c
	})
}

// WithWALLimit sets the WAL size past which the writer truncates it (64
// MiB outside tests).
func WithWALLimit(bytes int64) Option {
	return optionFunc(func(c config) config {
		if bytes > 0 {
			c.walLimit = bytes
		}
		return c
	})
}

// EncodeNow encodes spans as ExportSpans does, with the key ids the writer
// has published now, and returns a func that queues them, so encoded, for
// the writer.
func EncodeNow(e *Exporter, spans []sdktrace.ReadOnlySpan) (queue func()) {
	q := sdkSpans(spans)
	j := job{spans: q, enc: e.enc.encode(q)}
	return func() {
		e.mu.RLock()
		defer e.mu.RUnlock()
		select {
		case e.queue <- j:
		case <-e.stopping:
		}
	}
}

// Encoded reports whether the writer has published key ids, so that
// ExportSpans encodes rows ahead.
func Encoded(e *Exporter) bool { return e.enc.keys.Load() != nil }

// TraceKnownSQL is the writer's query for trace ids in a generation.
var TraceKnownSQL = traceKnownSQL

// TraceCacheSize is how many traces each generation of the writer's trace
// cache holds.
const TraceCacheSize = traceCacheSize

// PublishedKeys returns how many key ids the writer has published to the
// encoders (its key cache when it published them).
func PublishedKeys(e *Exporter) int {
	if snap := e.enc.keys.Load(); snap != nil {
		return len(snap.ids)
	}
	return 0
}
