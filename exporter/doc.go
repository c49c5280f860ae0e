// Package exporter is an OpenTelemetry span exporter that keeps spans in a
// local SQLite file, for programs with no tracing back end.
//
// ExportSpans never waits for the disk: it encodes the batch's rows, on
// its caller's goroutine (the batch span processor's), and hands them to
// one background writer goroutine, which owns the file's only connection
// (WAL mode, synchronous=NORMAL) and commits everything queued in one
// transaction with multi-row prepared inserts. The queue is bounded, in
// batches and in bytes (WithQueueSize, WithQueueBytes): when the writer
// cannot keep up, ExportSpans waits until its context ends or Shutdown
// begins, then drops the batch and counts it (Stats, and the
// dropped_spans row of the file's meta table, which the viewer shows).
// Retention keeps the file and its WAL within a size (WithMaxSize) and an
// age (WithMaxAge).
// Write errors (a full disk, a vanished file) are reported once per
// episode through otel.Handle and counted; the writer carries on when
// writes succeed again.
//
// The file's format is package schema's; otelsetup.Start installs this
// exporter behind a batch span processor in one call.
package exporter
