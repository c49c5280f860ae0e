package collect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// FileStore is the Store of a trace file: it queues received spans,
// decoded as `lonelytrace import` decodes them, for ex's writer, the
// same one the Go SDK's spans go through, and waits for their commit.
func FileStore(ex *exporter.Exporter) Store { return fileStore{ex} }

type fileStore struct{ ex *exporter.Exporter }

func (s fileStore) Store(ctx context.Context, rec otlp.Records, wait time.Duration) (int, int, string, error) {
	spans, rejected, msg := rec.Spans, rec.Rejected, rec.Msg
	if len(spans) == 0 {
		return 0, rejected, msg, nil
	}
	p, err := s.ex.QueueRecords(ctx, spans, false)
	if errors.Is(err, exporter.ErrQueueFull) && wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		p, err = s.ex.QueueRecords(wctx, spans, true)
		cancel()
		if err != nil && wctx.Err() != nil && ctx.Err() == nil {
			err = exporter.ErrQueueFull
		}
	}
	if errors.Is(err, exporter.ErrQueueFull) {
		err = fmt.Errorf("%w: %w", ErrBusy, err)
	}
	if err != nil {
		return 0, rejected, msg, err
	}
	// The writer commits promptly what somebody waits for, with every
	// other request queued meanwhile: one commit answers them all.
	err = p.Wait(ctx)
	var re *exporter.RejectedError
	switch {
	case errors.As(err, &re):
		// The file refused these spans, and took the others.
		if msg != "" {
			msg += "; "
		}
		msg += fmt.Sprintf("%d spans refused by the file: %v", re.Spans, re.Err)
		return len(spans) - re.Spans, rejected + re.Spans, msg, nil
	case err != nil:
		return 0, rejected, msg, err
	}
	return len(spans), rejected, msg, nil
}
