package collect

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ErrBusy is what a Store returns when the writer's queue has no room:
// the receiver answers it with a retryable status.
var ErrBusy = errors.New("collect: the writer's queue is full")

// Store keeps received traces in the file.
//
// Store converts td and queues its spans for the file's writer. With wait
// false it returns ErrBusy at once when the queue is full; with wait true
// it waits for room until ctx ends, then returns ErrBusy (or ctx's error).
// accepted and rejected count spans; msg says why spans were rejected.
// Spans it rejects are never stored, and a span is stored whole or not at
// all.
type Store interface {
	Store(ctx context.Context, td ptrace.Traces, wait bool) (accepted, rejected int, msg string, err error)
}
