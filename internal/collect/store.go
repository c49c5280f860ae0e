package collect

import (
	"context"
	"errors"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// ErrBusy is what a Store returns when the writer's queue has no room:
// the receiver answers it with a retryable status.
var ErrBusy = errors.New("collect: the writer's queue is full")

// Store keeps received traces in the file.
//
// Store queues the spans of rec, a request's records (its invalid spans
// already counted in rec.Rejected, otlp.Spans), for the file's writer
// and returns once they are committed to the file, so that the
// receiver's success answer means stored. When the queue is full it
// waits for room at most wait (0: not at all), then returns ErrBusy; ctx
// bounds the whole call. accepted and rejected count spans; msg says why
// spans were rejected: those that are not valid, and those the file
// refused (a Store rejects only the spans of the call that failed, never
// another call's). Spans it rejects are never stored, and a span is
// stored whole or not at all. With an error, no span of rec was
// acknowledged: it may still be stored when ctx ended while the write
// was under way.
//
// Once Store returns with no error, it keeps nothing of rec.Spans: the
// receiver decodes a later request into the same array.
type Store interface {
	Store(ctx context.Context, rec otlp.Records, wait time.Duration) (accepted, rejected int, msg string, err error)
}
