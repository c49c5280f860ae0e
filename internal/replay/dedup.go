package replay

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// A span that sits in several files (a broadcaster's span that rode home
// to several subscribers' files, or that the broadcaster also kept), or
// twice in one, is sent once: the first time replay meets it in file
// order and row order. Replay keeps no set of the spans it sent, which
// would grow with them (10M spans: 929 MB); it asks the files instead.
// A span of a page is sent unless an earlier row of its own file, or any
// row of an earlier file, holds its trace and span id. The earlier files
// were sent whole (or by an earlier run, which -resume says), so the
// answer is the same after a resume.
//
// Within a file, copies are found by the trace's row (traces.id), one
// seek a span. The writer gives a trace one row unless its spans come
// more than a generation apart (2^18 traces, schema.TraceGenerationShift),
// so a span stored twice that far apart in one file would go twice; across
// files the lookup is by trace id, which has no such gap.

// spanKey identifies a span across files.
type spanKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// maxLookupIDs bounds the trace ids of one lookup query, well under
// SQLite's limit on parameters.
const maxLookupIDs = 500

// copiesInFile returns the row ids of rows, a page of db in row order,
// whose span an earlier row of db holds, in the page or before it. It
// reads the page's traces' rows through spans_by_trace: one seek a span.
func copiesInFile(ctx context.Context, db *sql.DB, rows []schema.Span) (map[int64]bool, error) {
	q := `SELECT a.id FROM ` + schema.SpansTable + ` AS a WHERE a.id BETWEEN ? AND ? AND EXISTS (
	SELECT 1 FROM ` + schema.SpansTable + ` AS b WHERE b.trace = a.trace AND b.span_id = a.span_id AND b.id < a.id)`
	res, err := db.QueryContext(ctx, q, rows[0].ID, rows[len(rows)-1].ID)
	if err != nil {
		return nil, fmt.Errorf("look up spans sent: %w", err)
	}
	defer res.Close()
	copies := map[int64]bool{}
	for res.Next() {
		var id int64
		if err := res.Scan(&id); err != nil {
			return nil, fmt.Errorf("look up spans sent: %w", err)
		}
		copies[id] = true
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("look up spans sent: %w", err)
	}
	return copies, nil
}

// inFile adds to dup the spans of rows that db, an earlier file, holds.
func inFile(ctx context.Context, db *sql.DB, rows []schema.Span, dup map[spanKey]bool) error {
	var ids []any
	seen := map[trace.TraceID]bool{}
	for _, r := range rows {
		if !seen[r.TraceID] {
			seen[r.TraceID] = true
			ids = append(ids, r.TraceID[:])
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), maxLookupIDs)
		q := `SELECT t.trace_id, s.span_id FROM ` + schema.TracesTable + ` AS t JOIN ` + schema.SpansTable + ` AS s ON s.trace = t.id
WHERE t.trace_id IN (?` + strings.Repeat(",?", n-1) + `)`
		if err := scanKeys(ctx, db, q, ids[:n], dup); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// scanKeys adds the (trace_id, span_id) rows of q to keys.
func scanKeys(ctx context.Context, db *sql.DB, q string, args []any, keys map[spanKey]bool) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("look up spans sent: %w", err)
	}
	defer rows.Close()
	var tid, sid []byte
	for rows.Next() {
		if err := rows.Scan(&tid, &sid); err != nil {
			return fmt.Errorf("look up spans sent: %w", err)
		}
		var k spanKey
		copy(k.trace[:], tid)
		copy(k.span[:], sid)
		keys[k] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up spans sent: %w", err)
	}
	return nil
}
