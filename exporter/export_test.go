package exporter

import (
	"context"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
)

// OnWriterConn runs fn on the writer's connection, between transactions,
// and waits for it.
func OnWriterConn(ctx context.Context, e *Exporter, fn func(*sqlitec.Conn) error) error {
	done := make(chan error, 1)
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return ErrShutdown
	}
	select {
	case e.queue <- job{control: func(c *sqlitec.Conn) error {
		err := fn(c)
		done <- err
		return err
	}}:
	case <-e.stopping:
		e.mu.RUnlock()
		return ErrShutdown
	}
	e.mu.RUnlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// QueuedBytes returns the bytes the jobs queued or being written hold in
// e's queue (WithQueueBytes).
func QueuedBytes(e *Exporter) int64 { return e.room.inUse() }
