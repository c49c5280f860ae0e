package otlp

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

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
	path string
	// traces holds, for every trace met since the last forget, the ids
	// of its spans handed on and of those the file held for it.
	traces map[trace.TraceID]*spanSet
	// limit is how many traces traces holds before forget.
	limit int
}

// DefaultTraceLimit is how many traces an Importer keeps the span ids of
// before it has the sink write what it handed on and forgets them (about
// 100 bytes a trace and 10 a span): from then on it looks traces up in
// the file, so that its memory does not grow with the input.
const DefaultTraceLimit = 1 << 16

// spanSet is the set of span ids of one trace: a short list, which
// most traces are, or a map once it grows.
type spanSet struct {
	ids []trace.SpanID
	set map[trace.SpanID]struct{}
}

// listSpans is how many span ids a spanSet keeps in its list before
// it moves them to a map.
const listSpans = 32

func (t *spanSet) has(id trace.SpanID) bool {
	if t.set != nil {
		_, ok := t.set[id]
		return ok
	}
	for _, x := range t.ids {
		if x == id {
			return true
		}
	}
	return false
}

func (t *spanSet) add(id trace.SpanID) {
	if t.set != nil {
		t.set[id] = struct{}{}
		return
	}
	if len(t.ids) < listSpans {
		t.ids = append(t.ids, id)
		return
	}
	t.set = make(map[trace.SpanID]struct{}, 2*listSpans)
	for _, x := range t.ids {
		t.set[x] = struct{}{}
	}
	t.set[id] = struct{}{}
	t.ids = nil
}

func (t *spanSet) remove(id trace.SpanID) {
	if t.set != nil {
		delete(t.set, id)
		return
	}
	if i := slices.Index(t.ids, id); i >= 0 {
		t.ids = slices.Delete(t.ids, i, i+1)
	}
}

// NewImporter returns an Importer that hands spans to sink, the writer
// of the trace file at path; it reads the file (read-only) to skip the
// spans it already holds.
func NewImporter(ctx context.Context, sink Sink, path string) (*Importer, error) {
	im := &Importer{sink: sink, path: path, traces: make(map[trace.TraceID]*spanSet), limit: DefaultTraceLimit}
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	var any bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+schema.SpansTable+")").Scan(&any); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !any {
		db.Close()
		return im, nil
	}
	im.db = db
	return im, nil
}

// Import hands the spans of td that are not duplicates to the sink,
// waiting for room until ctx is done. stored counts the spans handed on,
// duplicates those skipped, rejected those with invalid ids (Spans);
// msg says why those were rejected.
func (im *Importer) Import(ctx context.Context, td ptrace.Traces) (stored, duplicates, rejected int, msg string, err error) {
	return im.ImportRecords(ctx, RecordsOf(td))
}

// ImportRecords is Import of traces already converted (DecodeProto,
// RecordsOf). It moves the spans it hands on to the front of rec.Spans,
// over the duplicates.
func (im *Importer) ImportRecords(ctx context.Context, rec Records) (stored, duplicates, rejected int, msg string, err error) {
	if len(im.traces) > im.limit {
		if err := im.forget(ctx); err != nil {
			return 0, 0, 0, "", err
		}
	}
	spans, rejected, msg := rec.Spans, rec.Rejected, rec.Msg
	if err := im.load(ctx, spans); err != nil {
		return 0, 0, rejected, msg, err
	}
	// The spans of a trace mostly come together: one map lookup serves
	// a run of them.
	var last trace.TraceID
	var ts *spanSet
	keep := spans[:0]
	for i := range spans {
		s := &spans[i]
		if ts == nil || s.TraceID != last {
			last, ts = s.TraceID, im.traces[s.TraceID]
			if ts == nil {
				ts = &spanSet{}
				im.traces[s.TraceID] = ts
			}
		}
		if ts.has(s.SpanID) {
			duplicates++
			continue
		}
		ts.add(s.SpanID)
		if len(keep) < i {
			keep = append(keep, *s)
		} else {
			keep = keep[:i+1] // no duplicate yet: the span is in place
		}
	}
	if len(keep) == 0 {
		return 0, duplicates, rejected, msg, nil
	}
	if err := im.sink.ExportRecords(ctx, keep); err != nil {
		for i := range keep {
			im.traces[keep[i].TraceID].remove(keep[i].SpanID)
		}
		return 0, duplicates, rejected, msg, err
	}
	return len(keep), duplicates, rejected, msg, nil
}

// forget has the sink write every span handed on so far and drops the
// span ids kept, so that from then on the file answers for them (load).
// A sink that cannot be flushed keeps them all.
func (im *Importer) forget(ctx context.Context) error {
	f, ok := im.sink.(interface{ ForceFlush(context.Context) error })
	if !ok {
		return nil
	}
	if err := f.ForceFlush(ctx); err != nil {
		return fmt.Errorf("%s: write the spans imported so far: %w", im.path, err)
	}
	if im.db == nil {
		db, err := schema.OpenRead(ctx, im.path)
		if err != nil {
			return err
		}
		im.db = db
	}
	im.traces = make(map[trace.TraceID]*spanSet)
	return nil
}

// loadChunk is how many trace ids load looks up in one query.
const loadChunk = 256

// load adds, for each trace of spans not met before, the ids of the
// spans the file holds for it, a query per loadChunk traces.
func (im *Importer) load(ctx context.Context, spans []schema.Span) error {
	if im.db == nil {
		return nil
	}
	var ids []any
	var last trace.TraceID
	for i := range spans {
		id := spans[i].TraceID
		if i > 0 && id == last {
			continue
		}
		last = id
		if _, ok := im.traces[id]; ok {
			continue
		}
		im.traces[id] = &spanSet{}
		ids = append(ids, id[:])
	}
	for len(ids) > 0 {
		n := min(len(ids), loadChunk)
		if err := im.lookup(ctx, ids[:n]); err != nil {
			for _, b := range ids {
				delete(im.traces, trace.TraceID(b.([]byte)))
			}
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// lookup adds the span ids the file holds for the traces ids, each
// already in im.traces.
func (im *Importer) lookup(ctx context.Context, ids []any) error {
	q := "SELECT t.trace_id, s.span_id FROM " + schema.TracesTable + " AS t JOIN " + schema.SpansTable +
		" AS s ON s.trace = t.id WHERE t.trace_id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	rows, err := im.db.QueryContext(ctx, q, ids...)
	if err != nil {
		return fmt.Errorf("%s: look up %d traces: %w", im.path, len(ids), err)
	}
	defer rows.Close()
	var tid, sid []byte
	for rows.Next() {
		if err := rows.Scan(&tid, &sid); err != nil {
			return fmt.Errorf("%s: look up %d traces: %w", im.path, len(ids), err)
		}
		ts := im.traces[trace.TraceID(tid)]
		if ts == nil || len(sid) != len(trace.SpanID{}) {
			continue
		}
		if id := trace.SpanID(sid); !ts.has(id) {
			ts.add(id)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: look up %d traces: %w", im.path, len(ids), err)
	}
	return nil
}

// Close closes the Importer's read connection. It does not close the sink.
func (im *Importer) Close() error {
	if im.db == nil {
		return nil
	}
	return im.db.Close()
}
