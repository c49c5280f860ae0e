package opstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The reads of the average trace (docs/design.md#the-average-trace): the
// most recent operations of a window, then every span of their traces.

// Sampled is one operation span of the average trace's sample.
type Sampled struct {
	// Key is the span's key; in a store of one file, its trace's row id
	// stands for the trace id (TraceSpans keys the spans alike).
	Key   SpanKey
	Start int64
}

// Local reports whether the keys of the sample and of its traces' spans
// hold a trace's row id rather than its id: in a store of one file,
// which spares a lookup in the traces table for each span read.
func (s *Store) Local() bool { return len(s.files) == 1 }

// RecentOps returns up to n of the most recent operations op that pass
// flt in every file, newest first, each span once.
func (s *Store) RecentOps(ctx context.Context, op string, flt *Filter, n int) ([]Sampled, error) {
	var ops []Sampled
	seen := make(map[SpanKey]struct{})
	for _, f := range s.files {
		var err error
		if ops, err = f.recentOps(ctx, op, flt, n, seen, ops, s.Local()); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(ops, func(a, b Sampled) int { return cmp.Compare(b.Start, a.Start) })
	if len(ops) > n {
		ops = ops[:n]
	}
	return ops, nil
}

// recentOps appends to dst up to n of f's operations op that pass flt, newest
// first, reading the operation index backwards and stopping early. With
// local, their keys hold the trace's row id (see rowKey).
func (f *File) recentOps(ctx context.Context, op string, flt *Filter, n int, seen map[SpanKey]struct{}, dst []Sampled, local bool) ([]Sampled, error) {
	where, args := flt.where(op)
	keep := flt.rowTest()
	trace := traceIDOf("spans")
	if local {
		trace = "trace"
	}
	rows, err := f.db.QueryContext(ctx, "SELECT "+trace+", span_id, start_ns, topic, glob FROM spans WHERE "+where+" ORDER BY start_ns DESC", args...)
	if err != nil {
		return dst, fmt.Errorf("sample %s spans of %s: %w", op, f.path, err)
	}
	defer rows.Close()
	var traceID, spanID []byte
	var traceRow int64
	dest := []any{&traceID, &spanID, nil, nil, nil}
	if local {
		dest[0] = &traceRow
	}
	var topic, glob *string
	taken := 0
	for taken < n && rows.Next() {
		var s Sampled
		dest[2], dest[3], dest[4] = &s.Start, &topic, &glob
		if err := rows.Scan(dest...); err != nil {
			return dst, fmt.Errorf("sample %s spans of %s: %w", op, f.path, err)
		}
		if keep != nil && !keep(orEmpty(topic), orEmpty(glob)) {
			continue
		}
		if local {
			s.Key = rowKey(traceRow, spanID)
		} else {
			s.Key = MakeSpanKey(traceID, spanID)
		}
		if _, dup := seen[s.Key]; dup {
			continue
		}
		seen[s.Key] = struct{}{}
		dst = append(dst, s)
		taken++
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("sample %s spans of %s: %w", op, f.path, err)
	}
	return dst, nil
}

// orEmpty returns *s, "" for a NULL column.
func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// PhaseSpan is what the average trace reads of every span of a sampled
// trace.
type PhaseSpan struct {
	Parent     []byte
	Name       string
	Start, End int64
	Failed     bool
	// SameOp is set when the span carries the operation sampled.
	SameOp bool
}

// TraceSpans reads every span of the traces of ops (a sample of
// RecentOps) from every file, by key, marking those of operation op. A
// span in several files is read from the first.
func (s *Store) TraceSpans(ctx context.Context, ops []Sampled, op string) (map[SpanKey]PhaseSpan, error) {
	local := s.Local()
	traceSet := make(map[[16]byte]struct{})
	for _, o := range ops {
		traceSet[[16]byte(o.Key[:16])] = struct{}{}
	}
	list := make([]any, 0, len(traceSet))
	for id := range traceSet {
		if local {
			list = append(list, int64(binary.BigEndian.Uint64(id[:8])))
		} else {
			list = append(list, hex.EncodeToString(id[:]))
		}
	}
	ids, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	spans := make(map[SpanKey]PhaseSpan)
	for _, f := range s.files {
		if err := f.traceSpans(ctx, string(ids), op, spans, local); err != nil {
			return nil, err
		}
	}
	return spans, nil
}

// traceSpans adds to dst every span of f in the traces whose hex ids are
// the JSON array ids, or with local, whose row ids are, marking those of
// operation op. A span already in dst (from another file) is kept.
func (f *File) traceSpans(ctx context.Context, ids, op string, dst map[SpanKey]PhaseSpan, local bool) error {
	query := `
SELECT t.trace_id, s.span_id, s.parent_span_id, s.name, s.start_ns, s.end_ns, s.status_code = ?2, s.op IS ?3
FROM traces AS t JOIN spans AS s ON s.trace = t.id
WHERE t.trace_id IN (SELECT unhex(value) FROM json_each(?1))`
	if local {
		query = `SELECT trace, span_id, parent_span_id, name, start_ns, end_ns, status_code = ?2, op IS ?3 FROM spans
WHERE trace IN (SELECT value FROM json_each(?1))`
	}
	rows, err := f.db.QueryContext(ctx, query, ids, schema.StatusError, op)
	if err != nil {
		return fmt.Errorf("read phases of %s: %w", f.path, err)
	}
	defer rows.Close()
	var traceID, spanID []byte
	var traceRow int64
	dest := []any{&traceID, &spanID, nil, nil, nil, nil, nil, nil}
	if local {
		dest[0] = &traceRow
	}
	for rows.Next() {
		var s PhaseSpan
		dest[2], dest[3], dest[4], dest[5], dest[6], dest[7] = &s.Parent, &s.Name, &s.Start, &s.End, &s.Failed, &s.SameOp
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read phases of %s: %w", f.path, err)
		}
		k := MakeSpanKey(traceID, spanID)
		if local {
			k = rowKey(traceRow, spanID)
		}
		if _, ok := dst[k]; !ok {
			dst[k] = s
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read phases of %s: %w", f.path, err)
	}
	return nil
}
