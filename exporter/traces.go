package exporter

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"

	"go.opentelemetry.io/otel/trace"
)

// traceCacheSize bounds each generation of the trace id cache, so the
// cache holds the last 8,192 to 16,384 traces seen: a quarter of the
// memory of 32,768 a generation (5.8 MiB). A span whose trace has left the
// cache costs a share of one insert and one lookup of 64 trace ids, never
// a wrong row; at 80,000 spans/s (4 spans a trace) the cache spans the
// last 0.4 to 0.8 s, at 20,000 spans/s 1.6 to 3.2 s.
const traceCacheSize = 1 << 13

// tracesPerInsert is how many new trace ids one INSERT carries at most.
// The writer has an INSERT for each power of two up to it
// (traceInsertSizes of them), so that the new traces of a job, 64 or
// not, take a statement per set bit of their count rather than one per
// trace beyond the last 64: a job of 100 new traces three (64, 32, 4)
// rather than 37.
const (
	tracesPerInsert  = 1 << (traceInsertSizes - 1)
	traceInsertSizes = 7
)

// traceInsertSQL inserts rows new traces in a generation: its arguments
// are the generation, then the trace ids. A trace id already in the
// generation is not added again (OR IGNORE); the others are added in the
// order of the arguments, each new row's id one more than the largest in
// the table. When every row is added, the writer knows their ids without
// asking; otherwise it looks them up (see insertTraces).
//
// The ids are SQLite's, not given by the writer, and OR IGNORE rather than
// the default ABORT: either would make SQLite journal the statement's
// pages to undo it alone, and on any error the writer rolls the whole
// transaction back anyway. The statement reads nothing of traces, which
// would make SQLite gather its rows in a temporary table first.
func traceInsertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO traces (gen, trace_id) SELECT ?, column2 FROM (VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d, ?)", i)
	}
	b.WriteString(") ORDER BY column1")
	return b.String()
}

// traceKnownSQL finds which of tracesPerInsert trace ids (the arguments
// after the first) are in the generation given first.
var traceKnownSQL = "SELECT id, trace_id FROM traces WHERE gen = ? AND trace_id IN (?" +
	strings.Repeat(", ?", tracesPerInsert-1) + ")"

// resolveTraces sets w.refs to the traces.id of every span of spans (a
// job's), in order; new traces go to generation w.traceGen with the ids
// after w.lastTrace. A trace is a row of its own, written once when first
// seen; doing the new ones of a whole batch together costs a statement or
// two per 64 traces instead of one or two per trace.
//
// The ids of the traces the cache misses are kept in w.pending for the
// job, not read back from the cache: a job with more new traces than a
// generation of the cache holds would push its own first ones out of it
// before its spans are given their ids.
func (w *writer) resolveTraces(spans []queued) error {
	w.newTraces = w.newTraces[:0]
	w.refs = w.refs[:0]
	if w.pending == nil || len(w.pending) > maxPendingKept {
		w.pending = make(map[trace.TraceID]int64)
	}
	pending := w.pending
	clear(pending)
	// The spans of a trace often come one after another: the previous
	// span's trace is looked up once.
	var prev trace.TraceID
	var prevRef int64
	havePrev := false
	for _, s := range spans {
		if s.isNil() {
			continue
		}
		id := s.traceID()
		if havePrev && id == prev && prevRef != 0 {
			w.refs = append(w.refs, prevRef)
			continue
		}
		ref, ok := w.traceRef(id)
		w.refs = append(w.refs, ref)
		prev, prevRef, havePrev = id, ref, true
		if ok {
			continue
		}
		if _, dup := pending[id]; !dup {
			pending[id] = 0
			w.newTraces = append(w.newTraces, id)
		}
	}
	if len(w.newTraces) == 0 {
		return nil
	}
	// A trace whose spans come on both sides of a generation's start
	// keeps its one row.
	if w.traceGen > 0 {
		found, err := w.knownTraces(w.traceGen-1, w.newTraces)
		if err != nil {
			return err
		}
		if found {
			w.newTraces = slices.DeleteFunc(w.newTraces, w.resolved)
		}
	}
	ids := w.newTraces
	for len(ids) > 0 {
		// The largest insert that the ids left fill.
		i := min(bits.Len(uint(len(ids)))-1, traceInsertSizes-1)
		n := 1 << i
		if err := w.insertTraces(w.traceInserts[i], ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	k := 0
	for _, s := range spans {
		if s.isNil() {
			continue
		}
		if w.refs[k] == 0 {
			id := s.traceID()
			ref := pending[id]
			if ref == 0 {
				return fmt.Errorf("trace %s was not resolved", id)
			}
			w.refs[k] = ref
		}
		k++
	}
	return nil
}

// maxPendingKept bounds the scratch map of resolveTraces kept between
// jobs: a map keeps the room it once grew to, so one job of a million new
// traces would otherwise hold tens of MiB until the writer stops.
const maxPendingKept = 4 * traceCacheSize

// learnTrace caches ref for id and, when id is one of the job's traces
// being resolved, records it there too.
func (w *writer) learnTrace(id trace.TraceID, ref int64) {
	w.cacheTrace(id, ref)
	if _, ok := w.pending[id]; ok {
		w.pending[id] = ref
	}
}

// resolved reports whether the job's trace id has its traces.id.
func (w *writer) resolved(id trace.TraceID) bool {
	return w.pending[id] != 0
}

// knownTraces learns the traces of ids that are in generation gen and
// reports whether there were any.
func (w *writer) knownTraces(gen int64, ids []trace.TraceID) (found bool, err error) {
	s := w.traceKnown
	for at := 0; at < len(ids); at += tracesPerInsert {
		chunk := ids[at:min(at+tracesPerInsert, len(ids))]
		err := func() error {
			defer s.ClearBindings()
			defer s.Reset()
			if err := s.BindInt64(1, gen); err != nil {
				return err
			}
			for i := range tracesPerInsert {
				// A short chunk repeats its last id.
				if err := s.BindBlob(2+i, chunk[min(i, len(chunk)-1)][:]); err != nil {
					return err
				}
			}
			for {
				row, err := s.Step()
				if err != nil || !row {
					return err
				}
				ref, raw := s.Int64(0), s.Bytes(1)
				if s.Type(0) != sqlitec.Integer || len(raw) != len(trace.TraceID{}) {
					return fmt.Errorf("unexpected row (type %d, %d bytes)", s.Type(0), len(raw))
				}
				w.learnTrace(trace.TraceID(raw), ref)
				w.lastTrace = max(w.lastTrace, ref)
				found = true
			}
		}()
		if err != nil {
			return found, fmt.Errorf("look for traces in generation %d: %w", gen, err)
		}
	}
	return found, nil
}

// insertTraces inserts the trace ids ids with stmt, which takes as many,
// and caches their traces.id: the ids after w.lastTrace, when every one
// was added, or else looked up.
func (w *writer) insertTraces(stmt *sqlitec.Stmt, ids []trace.TraceID) error {
	err := stmt.BindInt64(1, w.traceGen)
	for i := range ids {
		if err == nil {
			err = stmt.BindBlob(2+i, ids[i][:])
		}
	}
	if err == nil {
		err = stmt.Exec()
	} else {
		stmt.ClearBindings()
	}
	if err != nil {
		return fmt.Errorf("insert traces: %w", err)
	}
	added, last := w.conn.Changes(), w.conn.LastInsertRowID()
	if n := int64(len(ids)); added == n && last == w.lastTrace+n {
		for i, id := range ids {
			w.learnTrace(id, w.lastTrace+1+int64(i))
		}
		w.lastTrace = last
		return nil
	}
	// Some were in the generation already (written before a restart, or
	// fallen out of the cache): which ids the others got, only the file
	// can tell.
	if _, err := w.knownTraces(w.traceGen, ids); err != nil {
		return err
	}
	for _, id := range ids {
		if !w.resolved(id) {
			return fmt.Errorf("insert traces: trace %s neither added nor found", id)
		}
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
