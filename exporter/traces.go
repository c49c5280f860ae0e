package exporter

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// traceCacheSize bounds each generation of the trace id cache.
const traceCacheSize = 1 << 15

// tracesPerInsert is how many new trace ids one INSERT carries.
const tracesPerInsert = 64

// traceInsertSQL inserts rows new trace ids (?2 onwards) in generation ?1
// and returns the rows it added. An id already in the generation before
// is not added again (nor is one already in ?1): a trace whose spans come
// on both sides of a generation's start keeps one row. resolveTraces
// looks those up.
func traceInsertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO traces (gen, trace_id) SELECT ?1, n.column1 FROM (VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(?%d)", i+2)
	}
	b.WriteString(") AS n WHERE NOT EXISTS (SELECT 1 FROM traces AS o WHERE o.gen = ?1 - 1 AND o.trace_id = n.column1)")
	b.WriteString(" ON CONFLICT (gen, trace_id) DO NOTHING RETURNING id, trace_id")
	return b.String()
}

// resolveTraces makes sure every trace of group has its traces.id in the
// cache; new ones go to generation w.traceGen. A trace is a row of its
// own, written once when first seen; doing the new ones of a whole group
// together costs one statement per 64 traces instead of one per trace.
func (w *writer) resolveTraces(ctx context.Context, group []job) error {
	w.newTraces = w.newTraces[:0]
	seen := w.pending
	clear(seen)
	for _, j := range group {
		for _, s := range j.spans {
			if s == nil {
				continue
			}
			id := s.SpanContext().TraceID()
			if _, ok := w.traceRef(id); ok {
				continue
			}
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				w.newTraces = append(w.newTraces, id)
			}
		}
	}
	ids := w.newTraces
	for len(ids) > 0 {
		n, stmt, args := tracesPerInsert, w.traceInsertMany, w.traceArgsMany
		if len(ids) < tracesPerInsert {
			n, stmt, args = 1, w.traceInsertOne, w.traceArgsOne
		}
		if err := w.insertTraces(ctx, stmt, args, ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	// Ids that were already in the file (written before a restart, or
	// fallen out of the cache) came back from no INSERT: look them up.
	for _, id := range w.newTraces {
		if _, ok := w.traceRef(id); ok {
			continue
		}
		var ref int64
		if err := w.traceSelect.QueryRowContext(ctx, id[:]).Scan(&ref); err != nil {
			return fmt.Errorf("trace %s: %w", id, err)
		}
		w.cacheTrace(id, ref)
	}
	return nil
}

// insertTraces inserts the trace ids ids with stmt, whose arguments are
// args, and caches the traces.id of those that were new.
func (w *writer) insertTraces(ctx context.Context, stmt driver.Stmt, args []driver.NamedValue, ids []trace.TraceID) error {
	args[0].Value = w.traceGen
	for i := range ids {
		args[i+1].Value = ids[i][:]
	}
	defer clear(w.traceRow)
	err := w.conn.Raw(func(any) error {
		rows, err := stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
		if err != nil {
			return err
		}
		defer rows.Close()
		for {
			if err := rows.Next(w.traceRow); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			ref, ok1 := w.traceRow[0].(int64)
			raw, ok2 := w.traceRow[1].([]byte)
			if !ok1 || !ok2 || len(raw) != len(trace.TraceID{}) {
				return fmt.Errorf("unexpected row (%T, %T)", w.traceRow[0], w.traceRow[1])
			}
			w.cacheTrace(trace.TraceID(raw), ref)
		}
	})
	for i := range ids {
		args[i+1].Value = nil
	}
	if err != nil {
		return fmt.Errorf("insert traces: %w", err)
	}
	return nil
}

// traceRef returns the cached traces.id of id.
func (w *writer) traceRef(id trace.TraceID) (int64, bool) {
	if ref, ok := w.traces[id]; ok {
		return ref, true
	}
	if ref, ok := w.oldTraces[id]; ok {
		w.cacheTrace(id, ref)
		return ref, true
	}
	return 0, false
}

// cacheTrace remembers ref for id. The cache has two generations: when the
// young one is full it becomes the old one, so the traces still being
// written stay cached while the memory stays bounded.
func (w *writer) cacheTrace(id trace.TraceID, ref int64) {
	if len(w.traces) >= traceCacheSize {
		w.oldTraces, w.traces = w.traces, make(map[trace.TraceID]int64, traceCacheSize)
	}
	w.traces[id] = ref
}
