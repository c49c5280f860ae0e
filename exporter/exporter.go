package exporter

import (
	"context"

	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// ErrShutdown is returned by ExportSpans and ForceFlush after Shutdown.
var ErrShutdown = errors.New("lonelytrace exporter: shut down")

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// Exporter is an sdktrace.SpanExporter that stores spans in a lonelytrace
// SQLite file. ExportSpans encodes the spans and hands them to a background
// writer; the writer owns the file's one connection and commits many
// batches per transaction.
type Exporter struct {
	path  string
	cfg   config
	queue chan job
	// room bounds the bytes of the jobs in queue and in the writer's
	// hands (queue.go); the writer gives them back.
	room *room
	done chan struct{} // closed when the writer has returned

	// stopping is closed when Shutdown begins: every wait for room in the
	// queue gives up on it, so that stop's write lock is never held up
	// for longer than a send takes.
	stopping chan struct{}
	stopOnce sync.Once
	// mu guards closed: ExportSpans and ForceFlush send on queue under the
	// read lock while closed is false; stop sets it under the write lock,
	// and closes queue only after that, so no send can race the close.
	mu     sync.RWMutex
	closed bool

	closeErr error // the writer's result, set before done is closed

	// stats are shared with the writer, which counts what it writes.
	stats counters
	// enc encodes rows ahead with the key ids the writer publishes to it.
	enc encoder
	// dropping is set during an episode of drops, lastDrop the Unix ns of
	// the latest: the first drop of an episode is reported.
	dropping atomic.Bool
	lastDrop atomic.Int64
	// records are the resources of ExportRecords' spans (records.go).
	records recordResources
}

// counters are the exporter's statistics: ExportSpans counts batches and
// drops, the writer the rest.
type counters struct {
	written, dropped, failed, batches, txns atomic.Int64
	lastErr                                 atomic.Pointer[timedError]
}

type timedError struct {
	err error
	at  time.Time
}

// Stats are the exporter's counters since New.
type Stats struct {
	// Written is the number of spans committed to the file.
	Written int64
	// Dropped is the number of spans ExportSpans gave up on because the
	// queue stayed full until its context ended (or after Shutdown began).
	Dropped int64
	// Failed is the number of spans the writer could not write: their
	// transaction failed for a fault of the file (a full disk, say), or the
	// file refused their rows (ErrRejected). A busy file fails nothing.
	Failed int64
	// Batches is the number of ExportSpans calls whose spans were queued.
	Batches int64
	// Transactions is the number of write transactions committed.
	Transactions int64
	// LastError is the most recent write error, nil if none; LastErrorAt is
	// when it happened.
	LastError   error
	LastErrorAt time.Time
}

// New opens or creates the trace file at path and starts its writer. It
// fails, leaving the file as it was, when path is not a lonelytrace file
// this version can write: not SQLite, corrupt, of a newer schema, a
// directory, or in a read-only place.
func New(path string, opts ...Option) (*Exporter, error) {
	cfg := newConfig(opts)
	db, err := schema.OpenWrite(context.Background(), path, cfg.busyTimeout)
	if err != nil {
		return nil, fmt.Errorf("lonelytrace exporter: %w", err)
	}
	e := &Exporter{
		path:     path,
		cfg:      cfg,
		queue:    make(chan job, cfg.queueSize),
		room:     newRoom(cfg.queueBytes),
		done:     make(chan struct{}),
		stopping: make(chan struct{}),
	}
	w, err := newWriter(db, path, cfg, e.queue, e.room, &e.stats, &e.enc)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("lonelytrace exporter: %w", err)
	}
	go func() {
		e.closeErr = w.run()
		close(e.done)
	}()
	return e, nil
}

// Path returns the file the exporter writes.
func (e *Exporter) Path() string { return e.path }

// ExportSpans queues spans for the writer and returns without waiting for
// the disk. It also encodes their rows, so that the writer, which cannot
// work in parallel, only binds them: most when the writer is behind. When
// the queue is full (in batches or in bytes: WithQueueSize,
// WithQueueBytes) it waits until ctx is done or Shutdown begins, then
// drops the batch, counts it in Stats().Dropped and returns nil: the SDK would
// otherwise report every dropped batch, and the first drop of an episode
// is already reported once through otel.Handle.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	switch err := e.queueSpans(ctx, sdkSpans(spans), true, nil); err {
	case nil:
	case errQueueFull:
		e.drop(len(spans))
		return nil
	default:
		return err
	}
	// An episode of drops ends once a batch is queued a second after the
	// last drop: under a steady overload, queued and dropped batches
	// alternate, and each would otherwise be a new report.
	if e.dropping.Load() && time.Now().UnixNano()-e.lastDrop.Load() > int64(time.Second) {
		e.dropping.Store(false)
	}
	return nil
}

// queueSpans encodes the rows of spans and queues them for the writer
// (enqueue, which says what its errors mean), counting the batch once it
// is queued. committed, if not nil, is sent the outcome of their write
// (job.committed).
func (e *Exporter) queueSpans(ctx context.Context, spans []queued, wait bool, committed chan error) error {
	j := job{spans: spans, committed: committed}
	j.enc = e.enc.encode(j.spans)
	arena := int64(-1)
	if j.enc != nil {
		arena = int64(len(j.enc.arena))
	}
	j.bytes = batchBytes(len(spans), arena, e.enc.perSpan.Load())
	if err := e.enqueue(ctx, j, wait); err != nil {
		e.enc.recycle(j.enc)
		return err
	}
	e.stats.batches.Add(1)
	return nil
}

func (e *Exporter) drop(n int) {
	e.stats.dropped.Add(int64(n))
	e.lastDrop.Store(time.Now().UnixNano())
	if !e.dropping.Swap(true) {
		otel.Handle(fmt.Errorf("lonelytrace exporter: queue of %s full, dropping spans (%d dropped so far; the writer cannot keep up or the disk is stalled)", e.path, e.stats.dropped.Load()))
	}
}

// ForceFlush returns once every span handed to ExportSpans before the call
// is committed to the file, or when ctx is done. It returns the write error
// if the last transaction before it failed.
func (e *Exporter) ForceFlush(ctx context.Context) error {
	flushed := make(chan error, 1)
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return ErrShutdown
	}
	select {
	case e.queue <- job{flushed: flushed}:
		e.mu.RUnlock()
	case <-ctx.Done():
		e.mu.RUnlock()
		return ctx.Err()
	case <-e.stopping:
		e.mu.RUnlock()
		return ErrShutdown
	}
	select {
	case err := <-flushed:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops accepting spans, writes everything queued, checkpoints
// the WAL into the file and closes it. An ExportSpans waiting for room in
// the queue gives up when Shutdown begins and counts its spans as dropped.
// Shutdown returns early with ctx's error if ctx ends first; the writer
// still finishes in the background (a writer stalled by another process's
// lock writes what is queued once the lock is gone, then closes the file),
// and a later Shutdown waits for it again. Once the writer has finished,
// every call returns its result.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.stopOnce.Do(func() {
		close(e.stopping)
		go e.stop()
	})
	select {
	case <-e.done:
		return e.closeErr
	case <-ctx.Done():
		return fmt.Errorf("lonelytrace exporter: shutdown of %s: %w", e.path, ctx.Err())
	}
}

// stop closes the queue, which tells the writer to finish. The write lock
// waits only for senders, and every one of them gives up once stopping is
// closed.
func (e *Exporter) stop() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	close(e.queue)
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	s := Stats{
		Written:      e.stats.written.Load(),
		Dropped:      e.stats.dropped.Load(),
		Failed:       e.stats.failed.Load(),
		Batches:      e.stats.batches.Load(),
		Transactions: e.stats.txns.Load(),
	}
	if le := e.stats.lastErr.Load(); le != nil {
		s.LastError, s.LastErrorAt = le.err, le.at
	}
	return s
}
