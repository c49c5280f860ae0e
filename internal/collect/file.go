package collect

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// FileStore is the Store of a trace file: it converts received spans as
// `lonelytrace import` does and queues them for ex's writer, the same one
// the Go SDK's spans go through.
func FileStore(ex *exporter.Exporter) Store { return fileStore{ex} }

type fileStore struct{ ex *exporter.Exporter }

func (s fileStore) Store(ctx context.Context, td ptrace.Traces, wait bool) (int, int, string, error) {
	mode := otlp.NoWait
	if wait {
		mode = otlp.Wait
	}
	acc, rej, msg, err := otlp.Store(ctx, s.ex, td, mode)
	if errors.Is(err, exporter.ErrQueueFull) {
		err = fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return acc, rej, msg, err
}
