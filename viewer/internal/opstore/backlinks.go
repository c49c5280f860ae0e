package opstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// Links both ways (docs/design.md#links-both-ways): a span's own links are
// in its row; the spans that link *to* a trace are found by a bounded scan,
// as no index leads from a trace to the spans that link to it (one would
// cost every span with links on the way in).
const (
	// backlinkReach is how far before the trace's start and after its end
	// the spans that link to it are looked for.
	backlinkReach = time.Hour
	// maxBacklinkSpans bounds the spans read per file for one trace: the
	// batches nearest the trace first.
	maxBacklinkSpans = 2_000_000
)

// backlinkQuery selects the spans of a range of row ids that start in a
// window and whose links name a trace: ?1 and ?2 are the row ids, ?3 and
// ?4 the window in Unix ns, ?5 the trace id as the links column spells it.
var backlinkQuery = "SELECT " + traceIDOf("s") + `, s.span_id, s.links
FROM spans AS s WHERE s.id BETWEEN ?1 AND ?2 AND s.start_ns >= ?3 AND s.start_ns < ?4
AND s.links IS NOT NULL AND instr(s.links, ?5) > 0`

// Backlinks returns, per span id of trace id (which spans [start, end]
// Unix ns), the spans of every file of s that link to it.
func (s *Store) Backlinks(ctx context.Context, id trace.TraceID, start, end int64) (map[string][]model.SpanRef, error) {
	lo, hi := SatAdd(start, -int64(backlinkReach)), SatAdd(end, int64(backlinkReach))
	out := make(map[string][]model.SpanRef)
	seen := make(map[model.SpanRef]map[string]bool)
	for _, f := range s.files {
		if err := f.backlinks(ctx, id, lo, hi, func(from model.SpanRef, to string) {
			if seen[from][to] {
				return // the same span in two files
			}
			if seen[from] == nil {
				seen[from] = make(map[string]bool)
			}
			seen[from][to] = true
			out[to] = append(out[to], from)
		}); err != nil {
			return nil, err
		}
	}
	for _, refs := range out {
		slices.SortFunc(refs, func(a, b model.SpanRef) int {
			return cmp.Or(cmp.Compare(a.TraceID, b.TraceID), cmp.Compare(a.SpanID, b.SpanID))
		})
	}
	return out, nil
}

// backlinks calls found for each link, from a span of f that starts in
// [lo, hi), to a span of trace id.
func (f *File) backlinks(ctx context.Context, id trace.TraceID, lo, hi int64, found func(from model.SpanRef, to string)) error {
	batches, err := schema.BatchesInWindow(ctx, f.db, lo, hi)
	if err != nil {
		return fmt.Errorf("find links to %s in %s: %w", id, f.path, err)
	}
	mid := lo/2 + hi/2
	distance := func(b schema.Batch) int64 {
		switch {
		case b.MaxStartNs < mid:
			return mid - b.MaxStartNs
		case b.MinStartNs > mid:
			return b.MinStartNs - mid
		}
		return 0
	}
	slices.SortStableFunc(batches, func(a, b schema.Batch) int { return cmp.Compare(distance(a), distance(b)) })
	needle := `"trace_id":"` + hex.EncodeToString(id[:]) + `"`
	stmt, err := f.db.PrepareContext(ctx, backlinkQuery)
	if err != nil {
		return fmt.Errorf("find links to %s in %s: %w", id, f.path, err)
	}
	defer stmt.Close()
	read := int64(0)
	for _, b := range batches {
		if read >= maxBacklinkSpans {
			break
		}
		read += b.Spans
		if err := scanBacklinks(ctx, stmt, b, lo, hi, needle, id, found); err != nil {
			return fmt.Errorf("find links to %s in %s: %w", id, f.path, err)
		}
	}
	return nil
}

func scanBacklinks(ctx context.Context, stmt interface {
	QueryContext(context.Context, ...any) (*sql.Rows, error)
}, b schema.Batch, lo, hi int64, needle string, id trace.TraceID, found func(model.SpanRef, string)) error {
	rows, err := stmt.QueryContext(ctx, b.FirstSpan, b.LastSpan, lo, hi, needle)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var traceID, spanID, links []byte
		if err := rows.Scan(&traceID, &spanID, &links); err != nil {
			return err
		}
		ls, err := schema.DecodeLinks(links)
		if err != nil {
			continue // a span whose links cannot be read links nowhere
		}
		from := model.SpanRef{TraceID: hex.EncodeToString(traceID), SpanID: hex.EncodeToString(spanID)}
		for _, l := range ls {
			if l.TraceID == id {
				found(from, l.SpanID.String())
			}
		}
	}
	return rows.Err()
}

// SatAdd is a+b, saturated at the range of T: the sums of bytes of the
// aggregates and the window's edges never wrap.
func SatAdd[T int64 | uint64](a, b T) T {
	s := a + b
	switch {
	case b > 0 && s < a:
		return maxOf[T]()
	case b < 0 && s > a:
		return ^maxOf[T]() // the least int64
	}
	return s
}

// maxOf is the largest value of T.
func maxOf[T int64 | uint64]() T {
	m := ^T(0)
	if m < 0 { // signed: all ones is -1
		m = T(uint64(m) >> 1)
	}
	return m
}
