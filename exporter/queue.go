package exporter

import (
	"context"
	"errors"
	"sync"
	"unsafe"

	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
)

// The queue between ExportSpans and the writer is bounded twice: by
// batches (the channel's capacity, WithQueueSize) and by bytes
// (WithQueueBytes). Every entry that queues work goes through enqueue,
// which takes room for the job's bytes and then its place in the
// channel; the writer gives the bytes back once the job's rows are in a
// transaction (or the transaction failed), so the bound covers what the
// writer holds too.

// errQueueFull is enqueue's answer when the queue had no room before ctx
// ended, Shutdown began, or at once when it was not to wait.
var errQueueFull = errors.New("queue full")

// queued is a span in the writer's queue: an SDK span, or a record of a
// span that did not come from the SDK (records.go). One of them is set,
// and the writer adds each through its own path (encodeRow,
// resourceScope); neither is set for a nil span of an SDK batch, which
// the writer skips.
type queued struct {
	span sdktrace.ReadOnlySpan
	rec  *record
}

// sdkSpans returns an SDK batch as queued spans, in a slice of their own:
// the batch processor reuses its slice once ExportSpans returns, and the
// spans themselves are immutable snapshots that can be shared.
func sdkSpans(spans []sdktrace.ReadOnlySpan) []queued {
	out := make([]queued, len(spans))
	for i, s := range spans {
		out[i].span = s
	}
	return out
}

func (q queued) isNil() bool { return q.span == nil && q.rec == nil }

func (q queued) traceID() trace.TraceID {
	if q.rec != nil {
		return q.rec.span.TraceID
	}
	return q.span.SpanContext().TraceID()
}

// resourceScope returns the span's resource and instrumentation scope.
func (q queued) resourceScope() (*resource.Resource, instrumentation.Scope) {
	if q.rec != nil {
		return q.rec.res, q.rec.scope
	}
	return q.span.Resource(), q.span.InstrumentationScope()
}

// job is one unit of the writer's queue: a batch of spans, or a flush
// marker whose channel the writer answers once everything before it is
// committed.
type job struct {
	spans []queued
	// enc is spans encoded ahead, or nil.
	enc *encoded
	// bytes is the room the job holds in the queue (room.take).
	bytes   int64
	flushed chan error // buffered, 1
	// committed (buffered, 1), when set, is sent the outcome of the
	// job's spans: nil once the transaction that holds them is committed,
	// or the error that kept them out (QueueRecords' Pending waits on
	// it). Somebody waits, so the writer commits the job promptly, with
	// whatever is queued beside it, as it does for a flush marker.
	committed chan error
	// control runs on the writer's connection before the group's
	// transaction; tests use it to simulate faults.
	control func(*sqlitec.Conn) error
}

// Estimates of the memory of a queued span, besides its encoded row:
// the SDK's snapshot of a span with no attributes, events or links, and
// the row's unboxed fields. A span's attributes take about as many bytes
// in the snapshot as in the arena.
const (
	spanBaseBytes = 512
	rowBytes      = int64(unsafe.Sizeof(spanFields{})) + 1
)

// batchBytes estimates the memory a batch of n spans holds while it is
// queued: the spans themselves and their encoded rows, whose arena holds
// arena bytes. A batch not encoded ahead counts perSpan arena bytes a
// span, as the last batch encoded had.
func batchBytes(n int, arena, perSpan int64) int64 {
	if arena < 0 {
		arena = int64(n) * max(perSpan, 128)
	}
	return int64(n)*(spanBaseBytes+rowBytes) + 2*arena
}

// room bounds the bytes of the jobs queued or being written. Waiters are
// woken by closing freed, which is then replaced.
type room struct {
	mu    sync.Mutex
	used  int64
	limit int64
	freed chan struct{}
}

func newRoom(limit int64) *room {
	return &room{limit: limit, freed: make(chan struct{})}
}

// take reserves n bytes. When they do not fit it fails at once unless
// wait is set, and otherwise waits until they fit, ctx is done or stop is
// closed. n always fits in an empty queue, so that a batch larger than
// the bound is queued alone rather than never; n = 0 always fits.
func (r *room) take(ctx context.Context, n int64, wait bool, stop <-chan struct{}) bool {
	if n == 0 {
		return true
	}
	for {
		r.mu.Lock()
		if r.used == 0 || r.used+n <= r.limit {
			r.used += n
			r.mu.Unlock()
			return true
		}
		freed := r.freed
		r.mu.Unlock()
		if !wait {
			return false
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		}
	}
}

// give returns n bytes taken before and wakes the waiters.
func (r *room) give(n int64) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	r.used -= n
	close(r.freed)
	r.freed = make(chan struct{})
	r.mu.Unlock()
}

// inUse returns the bytes taken.
func (r *room) inUse() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used
}

// enqueue hands j to the writer: it takes room for j.bytes and a place in
// the channel, waiting for either (unless wait is false) until ctx is done
// or Shutdown begins. It returns ErrShutdown after Shutdown, errQueueFull
// when j found no room; j is then not queued and holds no room.
func (e *Exporter) enqueue(ctx context.Context, j job, wait bool) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrShutdown
	}
	if !e.room.take(ctx, j.bytes, wait, e.stopping) {
		return errQueueFull
	}
	select {
	case e.queue <- j:
		return nil
	default:
	}
	if wait {
		select {
		case e.queue <- j:
			return nil
		case <-ctx.Done():
		case <-e.stopping:
		}
	}
	e.room.give(j.bytes)
	return errQueueFull
}
