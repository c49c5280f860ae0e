package exporter

import (
	"context"
	"database/sql"
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
	done  chan struct{} // closed when the writer has returned

	// mu guards closed: ExportSpans and ForceFlush send on queue under the
	// read lock while closed is false; Shutdown sets it under the write
	// lock, and closes queue only after that, so no send can race the
	// close.
	mu     sync.RWMutex
	closed bool

	shutdownOnce sync.Once
	shutdownErr  error
	closeErr     error // set by the writer before it closes done

	written, dropped, failed, batches, txns atomic.Int64
	lastErr                                 atomic.Pointer[timedError]
	dropping                                atomic.Bool
	lastDrop                                atomic.Int64 // Unix ns of the latest drop

	// maint is the state of the writer's maintenance (maintain.go); only
	// the writer goroutine touches it.
	maint maintenance
	// ckpt is the checkpointer of the writer's file (checkpoint.go).
	ckpt checkpoints
	// keys are the attribute key ids that ExportSpans encodes rows with
	// (encode.go); nil until the writer publishes them.
	keys atomic.Pointer[keySnapshot]
	// encodedBytes is the arena bytes per span of the last batch encoded.
	encodedBytes atomic.Int64
	// records are the resources of ExportRecords' spans (records.go).
	records recordResources
}

// job is one unit of the writer's queue: a batch of spans, or a flush
// marker whose channel the writer closes once everything before it is
// committed.
type job struct {
	spans []sdktrace.ReadOnlySpan
	// enc is spans encoded ahead, or nil.
	enc     *encoded
	flushed chan error // buffered, 1
	// control runs on the writer's connection before the group's
	// transaction; tests use it to simulate faults.
	control func(*sql.Conn) error
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
	// Failed is the number of spans whose write transaction failed.
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
	w, err := newWriter(db, path, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("lonelytrace exporter: %w", err)
	}
	e := &Exporter{
		path:  path,
		cfg:   cfg,
		queue: make(chan job, cfg.queueSize),
		done:  make(chan struct{}),
	}
	w.e = e
	e.maint.remember(path)
	e.startCheckpointer(w)
	go w.run()
	go e.tick()
	return e, nil
}

// tick wakes an idle writer every maintainEvery with an empty job, so
// that retention and the check of the file also happen while no spans
// arrive. A writer with jobs waiting runs maintain after them anyway.
func (e *Exporter) tick() {
	t := time.NewTicker(e.cfg.maintainEvery)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		e.mu.RLock()
		if !e.closed && len(e.queue) == 0 && !e.maint.quiet.Load() {
			select {
			case e.queue <- job{}:
			default:
			}
		}
		e.mu.RUnlock()
	}
}

// Path returns the file the exporter writes.
func (e *Exporter) Path() string { return e.path }

// ExportSpans queues spans for the writer and returns without waiting for
// the disk. It also encodes their rows, so that the writer, which cannot
// work in parallel, only binds them: most when the writer is behind. When
// the queue is full it waits until ctx is done, then drops
// the batch, counts it in Stats().Dropped and returns nil: the SDK would
// otherwise report every dropped batch, and the first drop of an episode
// is already reported once through otel.Handle.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrShutdown
	}
	// The batch processor reuses its slice once we return; the spans
	// themselves are immutable snapshots and can be shared.
	j := job{spans: append([]sdktrace.ReadOnlySpan(nil), spans...)}
	j.enc = e.encode(j.spans)
	select {
	case e.queue <- j:
	default:
		select {
		case e.queue <- j:
		case <-ctx.Done():
			e.drop(len(spans))
			return nil
		}
	}
	e.batches.Add(1)
	// An episode of drops ends once a batch is queued a second after the
	// last drop: under a steady overload, queued and dropped batches
	// alternate, and each would otherwise be a new report.
	if e.dropping.Load() && time.Now().UnixNano()-e.lastDrop.Load() > int64(time.Second) {
		e.dropping.Store(false)
	}
	return nil
}

func (e *Exporter) drop(n int) {
	e.dropped.Add(int64(n))
	e.lastDrop.Store(time.Now().UnixNano())
	if !e.dropping.Swap(true) {
		otel.Handle(fmt.Errorf("lonelytrace exporter: queue of %s full, dropping spans (%d dropped so far; the writer cannot keep up or the disk is stalled)", e.path, e.dropped.Load()))
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
	}
	select {
	case err := <-flushed:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops accepting spans, writes everything queued, checkpoints
// the WAL into the file and closes it. It returns early with ctx's error
// if ctx ends first; the writer still finishes in the background. Calls
// after the first return the first call's result.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		// The writer's last checkpoint, which moves the whole WAL into the
		// file, must not meet one of the checkpointer's: SQLite runs one at
		// a time, and the other gives up at once. So the checkpointer stops
		// before the writer is told to finish.
		go func() {
			e.stopCheckpointer(true)
			close(e.queue)
		}()
		select {
		case <-e.done:
			e.shutdownErr = e.closeErr
		case <-ctx.Done():
			e.shutdownErr = fmt.Errorf("lonelytrace exporter: shutdown of %s: %w", e.path, ctx.Err())
		}
	})
	return e.shutdownErr
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	s := Stats{
		Written:      e.written.Load(),
		Dropped:      e.dropped.Load(),
		Failed:       e.failed.Load(),
		Batches:      e.batches.Load(),
		Transactions: e.txns.Load(),
	}
	if le := e.lastErr.Load(); le != nil {
		s.LastError, s.LastErrorAt = le.err, le.at
	}
	return s
}
