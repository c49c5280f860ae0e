package otlp

import (
	"context"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Sink is where Store hands spans: the lonelytrace exporter's writer
// (*exporter.Exporter), the same one the Go SDK's spans go through.
// Both methods take every span of the call or none of them, and neither
// waits for the disk: a span they took is queued, and written unless the
// write fails (Shutdown and ForceFlush wait for it).
type Sink interface {
	// ExportRecords queues spans, waiting for room in the writer's queue
	// until ctx is done; then it returns ctx's error and queues nothing.
	ExportRecords(ctx context.Context, spans []schema.Span) error
	// TryExportRecords queues spans if the writer's queue has room now,
	// and otherwise returns exporter.ErrQueueFull at once.
	TryExportRecords(spans []schema.Span) error
}

// Mode says what Store does when the writer's queue is full.
type Mode int

const (
	// Wait waits for room until ctx is done (import).
	Wait Mode = iota
	// NoWait returns the sink's error at once (collect, whose client is
	// told to retry).
	NoWait
)

// Store converts td (Spans) and hands its valid spans to sink in one call,
// so that they are queued all or none.
//
// accepted is the number of spans queued; rejected those left out for an
// invalid id, with rejectMessage saying why (an OTLP partial success:
// rejected_spans and error_message). err is the sink's error, in which
// case accepted is 0 and nothing of td was queued: with NoWait,
// errors.Is(err, exporter.ErrQueueFull) means "retry later" (HTTP 429 or
// 503 with Retry-After, gRPC UNAVAILABLE); exporter.ErrShutdown means the
// writer is closing. td is only read.
func Store(ctx context.Context, sink Sink, td ptrace.Traces, mode Mode) (accepted, rejected int, rejectMessage string, err error) {
	spans, rejected, rejectMessage := Spans(td)
	if len(spans) == 0 {
		return 0, rejected, rejectMessage, nil
	}
	if mode == NoWait {
		err = sink.TryExportRecords(spans)
	} else {
		err = sink.ExportRecords(ctx, spans)
	}
	if err != nil {
		return 0, rejected, rejectMessage, err
	}
	return len(spans), rejected, rejectMessage, nil
}
