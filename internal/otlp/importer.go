package otlp

import (
	"context"
	"database/sql"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Importer stores traces in a trace file once each: a span whose trace
// and span id the file held when the Importer started, or that an earlier
// Import handed on, is skipped. Importing the same input twice therefore
// stores nothing the second time. An Importer is not safe for concurrent
// use.
type Importer struct {
	sink Sink
	db   *sql.DB // nil when the file held no spans at the start
	// seen holds the ids of the spans handed on, and of those the file
	// holds for the traces in loaded.
	seen   map[spanKey]struct{}
	loaded map[trace.TraceID]struct{}
	lookup *sql.Stmt
}

type spanKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// NewImporter returns an Importer that hands spans to sink, the writer
// of the trace file at path; it reads the file (read-only) to skip the
// spans it already holds.
func NewImporter(ctx context.Context, sink Sink, path string) (*Importer, error) {
	im := &Importer{sink: sink, seen: make(map[spanKey]struct{}), loaded: make(map[trace.TraceID]struct{})}
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	var any bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM spans)").Scan(&any); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !any {
		db.Close()
		return im, nil
	}
	im.db = db
	im.lookup, err = db.PrepareContext(ctx, "SELECT s.span_id FROM spans AS s JOIN traces AS t ON t.id = s.trace WHERE t.trace_id = ?")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// Import hands the spans of td that are not duplicates to the sink,
// waiting for room until ctx is done. stored counts the spans handed on,
// duplicates those skipped, rejected those with invalid ids (Spans);
// msg says why those were rejected.
func (im *Importer) Import(ctx context.Context, td ptrace.Traces) (stored, duplicates, rejected int, msg string, err error) {
	spans, rejected, msg := Spans(td)
	keep := spans[:0]
	for i := range spans {
		s := &spans[i]
		if err := im.load(ctx, s.TraceID); err != nil {
			return 0, 0, rejected, msg, err
		}
		k := spanKey{s.TraceID, s.SpanID}
		if _, dup := im.seen[k]; dup {
			duplicates++
			continue
		}
		im.seen[k] = struct{}{}
		keep = append(keep, *s)
	}
	if len(keep) == 0 {
		return 0, duplicates, rejected, msg, nil
	}
	if err := im.sink.ExportRecords(ctx, keep); err != nil {
		for i := range keep {
			delete(im.seen, spanKey{keep[i].TraceID, keep[i].SpanID})
		}
		return 0, duplicates, rejected, msg, err
	}
	return len(keep), duplicates, rejected, msg, nil
}

// load adds the spans the file holds for trace id to seen, once.
func (im *Importer) load(ctx context.Context, id trace.TraceID) error {
	if im.db == nil {
		return nil
	}
	if _, ok := im.loaded[id]; ok {
		return nil
	}
	rows, err := im.lookup.QueryContext(ctx, id[:])
	if err != nil {
		return fmt.Errorf("look up trace %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return fmt.Errorf("look up trace %s: %w", id, err)
		}
		var sid trace.SpanID
		copy(sid[:], b)
		im.seen[spanKey{id, sid}] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up trace %s: %w", id, err)
	}
	im.loaded[id] = struct{}{}
	return nil
}

// Close closes the Importer's read connection. It does not close the sink.
func (im *Importer) Close() error {
	if im.db == nil {
		return nil
	}
	im.lookup.Close()
	return im.db.Close()
}
