package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	_ "modernc.org/sqlite" // the driver the exporter uses

	"github.com/lonelytrace/lonelytrace/schema"
)

// The plain yardstick: what a straightforward exporter gets from the same
// SQLite, as the exporter's BenchmarkPlainInsert does it.
const (
	plainRowsPerTxn = 512
	plainQueue      = 64 // batches, as exporter.DefaultQueueSize
	plainTable      = `CREATE TABLE IF NOT EXISTS spans (trace_id BLOB, span_id BLOB, parent_span_id BLOB, name TEXT,
	kind INTEGER, start_ns INTEGER, end_ns INTEGER, status_code INTEGER, attributes TEXT, resource INTEGER)`
	plainInsert = `INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

var _ sdktrace.SpanExporter = (*plainExporter)(nil)

// plainExporter inserts spans one row at a time on its own goroutine, the
// only one that touches its connection. ExportSpans queues, waits for room
// until its context ends and then drops, as lonelytrace's exporter does.
type plainExporter struct {
	db    *sql.DB
	conn  *sql.Conn
	queue chan []sdktrace.ReadOnlySpan
	done  chan struct{}

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool

	once    sync.Once
	err     error // the shutdown's
	lastErr error // the writer's last, read after done is closed

	written, dropped, failed atomic.Int64
}

func startPlain(path string) (pipeline, error) {
	e, err := newPlainExporter(path)
	if err != nil {
		return pipeline{}, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sqliteBatcher(e)))
	return pipeline{
		tracer: tp.Tracer(tracerName),
		counts: func() (int64, int64, int64) {
			return e.written.Load(), e.dropped.Load(), e.failed.Load()
		},
		shutdown: tp.Shutdown,
		file:     path,
	}, nil
}

func newPlainExporter(path string) (*plainExporter, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err == nil {
		var mode string
		err = conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
		if err == nil && mode != "wal" {
			err = fmt.Errorf("journal_mode = %q; want wal", mode)
		}
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, plainTable)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	e := &plainExporter{db: db, conn: conn, queue: make(chan []sdktrace.ReadOnlySpan, plainQueue), done: make(chan struct{})}
	go e.run()
	return e, nil
}

func (e *plainExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return errors.New("plain exporter: shut down")
	}
	// The batch processor reuses its slice once we return.
	batch := append([]sdktrace.ReadOnlySpan(nil), spans...)
	select {
	case e.queue <- batch:
	case <-ctx.Done():
		e.dropped.Add(int64(len(spans)))
	}
	return nil
}

func (e *plainExporter) Shutdown(ctx context.Context) error {
	e.once.Do(func() {
		e.mu.Lock()
		e.closed = true
		close(e.queue)
		e.mu.Unlock()
		select {
		case <-e.done:
			e.err = e.lastErr
		case <-ctx.Done():
			e.err = ctx.Err()
		}
	})
	return e.err
}

func (e *plainExporter) run() {
	defer close(e.done)
	ctx := context.Background()
	stmt, err := e.conn.PrepareContext(ctx, plainInsert)
	if err != nil {
		e.lastErr = fmt.Errorf("prepare: %w", err)
		for batch := range e.queue {
			e.failed.Add(int64(len(batch)))
		}
		e.conn.Close()
		e.db.Close()
		return
	}
	var buf []byte
	for batch := range e.queue {
		for off := 0; off < len(batch); off += plainRowsPerTxn {
			rows := batch[off:min(off+plainRowsPerTxn, len(batch))]
			if err := e.insert(ctx, stmt, rows, &buf); err != nil {
				e.lastErr = err
				e.failed.Add(int64(len(rows)))
				continue
			}
			e.written.Add(int64(len(rows)))
		}
	}
	stmt.Close()
	if _, err := e.conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil && e.lastErr == nil {
		e.lastErr = fmt.Errorf("checkpoint: %w", err)
	}
	e.conn.Close()
	if err := e.db.Close(); err != nil && e.lastErr == nil {
		e.lastErr = err
	}
}

func (e *plainExporter) insert(ctx context.Context, stmt *sql.Stmt, rows []sdktrace.ReadOnlySpan, buf *[]byte) (err error) {
	if _, err := e.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = e.conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	for i, s := range rows {
		tid, sid, pid := s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID()
		*buf = schema.AppendAttributes((*buf)[:0], s.Attributes(), nil)
		if _, err := stmt.ExecContext(ctx, tid[:], sid[:], pid[:], s.Name(), int64(s.SpanKind()),
			s.StartTime().UnixNano(), s.EndTime().UnixNano(), int64(s.Status().Code), string(*buf), 1); err != nil {
			return fmt.Errorf("insert rows[%d]: %w", i, err)
		}
	}
	if _, err := e.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
