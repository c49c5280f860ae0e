package exporter

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// traceCacheSize bounds each generation of the trace id cache.
const traceCacheSize = 1 << 15

// tracesPerInsert is how many new trace ids one INSERT carries.
const tracesPerInsert = 64

// traceInsertSQL inserts rows new traces in a generation: its arguments
// are the generation, then an id the writer chose and a trace id for each
// row. A trace id already in the generation is not added again (OR
// IGNORE); the writer compares the rows added with rows and looks up the
// traces of a statement that added fewer (see resolveTraces).
//
// OR IGNORE also keeps SQLite from journalling the statement's pages to
// undo it alone: on any error the writer rolls the whole transaction back.
// The statement reads nothing of traces, which would make SQLite gather
// its rows in a temporary table first, and its parameters are anonymous,
// since the driver looks each numbered one up by name, a scan of all of
// them.
func traceInsertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO traces (id, gen, trace_id) SELECT column1, ?, column2 FROM (VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
	}
	b.WriteString(")")
	return b.String()
}

// tracePriorSQL finds which of tracesPerInsert trace ids (the arguments
// after the first) are in generation ?1, the one before the writer's: a
// trace whose spans come on both sides of a generation's start keeps its
// one row.
var tracePriorSQL = "SELECT id, trace_id FROM traces WHERE gen = ? AND trace_id IN (?" +
	strings.Repeat(", ?", tracesPerInsert-1) + ")"

// resolveTraces sets w.refs to the traces.id of every span of group, in
// order; new traces go to generation w.traceGen with the ids after
// w.lastTrace. A trace is a row of its own, written once when first seen;
// doing the new ones of a whole group together costs one statement per 64
// traces instead of one per trace.
func (w *writer) resolveTraces(ctx context.Context, group []job) error {
	w.newTraces = w.newTraces[:0]
	w.refs = w.refs[:0]
	seen := w.pending
	clear(seen)
	missing := false
	for _, j := range group {
		for _, s := range j.spans {
			if s == nil {
				continue
			}
			id := s.SpanContext().TraceID()
			ref, ok := w.traceRef(id)
			w.refs = append(w.refs, ref)
			if ok {
				continue
			}
			missing = true
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				w.newTraces = append(w.newTraces, id)
			}
		}
	}
	if err := w.priorTraces(ctx); err != nil {
		return err
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
	// fallen out of the cache) were not all added: look them up.
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
	if !missing {
		return nil
	}
	k := 0
	for _, j := range group {
		for _, s := range j.spans {
			if s == nil {
				continue
			}
			if w.refs[k] == 0 {
				id := s.SpanContext().TraceID()
				ref, ok := w.traceRef(id)
				if !ok {
					return fmt.Errorf("trace %s was not resolved", id)
				}
				w.refs[k] = ref
			}
			k++
		}
	}
	return nil
}

// priorTraces caches the traces of w.newTraces that are in the generation
// before w.traceGen and leaves the others in w.newTraces.
func (w *writer) priorTraces(ctx context.Context) error {
	if w.traceGen == 0 || len(w.newTraces) == 0 {
		return nil
	}
	args := w.priorArgs
	args[0].Value = w.traceGen - 1
	found := false
	for at := 0; at < len(w.newTraces); at += tracesPerInsert {
		chunk := w.newTraces[at:min(at+tracesPerInsert, len(w.newTraces))]
		for i := range tracesPerInsert {
			// A short chunk repeats its last id.
			args[1+i].Value = chunk[min(i, len(chunk)-1)][:]
		}
		err := w.conn.Raw(func(any) error {
			rows, err := w.tracePrior.(driver.StmtQueryContext).QueryContext(ctx, args)
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
				found = true
			}
		})
		clear(w.traceRow)
		if err != nil {
			return fmt.Errorf("look for traces in generation %d: %w", w.traceGen-1, err)
		}
	}
	for i := 1; i < len(args); i++ {
		args[i].Value = nil
	}
	if found {
		w.newTraces = slices.DeleteFunc(w.newTraces, func(id trace.TraceID) bool {
			_, ok := w.traces[id]
			return ok
		})
	}
	return nil
}

// insertTraces inserts the trace ids ids with stmt, whose arguments are
// args, under the ids after w.lastTrace. When every one was added, it
// caches them; otherwise some were in the file already, and it leaves
// them all to resolveTraces to look up.
func (w *writer) insertTraces(ctx context.Context, stmt driver.Stmt, args []driver.NamedValue, ids []trace.TraceID) error {
	args[0].Value = w.traceGen
	for i := range ids {
		args[2*i+1].Value = w.lastTrace + 1 + int64(i)
		args[2*i+2].Value = ids[i][:]
	}
	var added int64
	err := w.conn.Raw(func(any) error {
		res, err := stmt.(driver.StmtExecContext).ExecContext(ctx, args)
		if err != nil {
			return err
		}
		added, err = res.RowsAffected()
		return err
	})
	for i := range ids {
		args[2*i+2].Value = nil
	}
	if err != nil {
		return fmt.Errorf("insert traces: %w", err)
	}
	if added == int64(len(ids)) {
		for i, id := range ids {
			w.cacheTrace(id, w.lastTrace+1+int64(i))
		}
	}
	// The ids of rows not added are left unused: gaps are harmless.
	w.lastTrace += int64(len(ids))
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
