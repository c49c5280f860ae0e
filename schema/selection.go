package schema

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// TraceSelection chooses traces by a window of time and the viewer's
// filters; lonelytrace export and lonelytrace copy select with it. The
// rule (docs/design.md, "Selecting traces"):
//
// A trace is selected when one of its spans starts in the window and,
// when any of Broadcaster, Topic and Glob is set, that span is an
// operation span (op not NULL) that passes every one set: its broadcaster
// equals Broadcaster, its topic equals Topic, and Glob matches its topic
// as a GlobPattern or equals its own glob pattern (a missing topic or
// pattern is ""). A selected trace is selected whole: every span of the
// file with its trace id, in the window or not.
type TraceSelection struct {
	// Since and Until are the window, Unix ns: a span is in it when it
	// starts in [Since, Until). math.MaxInt64 is as good as no end.
	Since, Until int64
	// SinceBeginning drops the window's lower bound: Since is ignored.
	SinceBeginning bool
	// Broadcaster, Topic and Glob are the filters; "" is no filter.
	Broadcaster, Topic, Glob string
}

// selectionFrom reads the spans that start in [?1, ?2) by the batches
// rule (batches.go): only the span id ranges of the batches that meet the
// window, never a scan of every span (there is no index on start_ns).
// CROSS JOIN keeps batches the outer loop.
const selectionFrom = ` FROM batches AS b
CROSS JOIN spans AS s ON s.id BETWEEN b.first_span AND b.last_span
JOIN traces AS t ON t.id = s.trace
WHERE b.max_start_ns >= ?1 AND b.min_start_ns < ?2 AND b.spans > 0
AND s.start_ns >= ?1 AND s.start_ns < ?2`

// bounds returns the window as [since, until) in Unix ns.
func (sel TraceSelection) bounds() (since, until int64) {
	since, until = sel.Since, sel.Until
	if sel.SinceBeginning {
		since = math.MinInt64
	}
	return since, until
}

// filtered reports whether any filter is set.
func (sel TraceSelection) filtered() bool {
	return sel.Broadcaster != "" || sel.Topic != "" || sel.Glob != ""
}

// query returns the query of the spans that SQL selects and its
// arguments. Its rows are the trace id and, with a Glob, the topic and
// glob of the span, for the Go half of the rule.
func (sel TraceSelection) query() (string, []any) {
	since, until := sel.bounds()
	args := []any{since, until}
	cols := "SELECT DISTINCT t.trace_id"
	if sel.Glob != "" {
		cols = "SELECT t.trace_id, coalesce(s.topic, ''), coalesce(s.glob, '')"
	}
	q := cols + selectionFrom
	// The filters' columns are read from the rows of the id ranges: a
	// unary + keeps SQLite from building an automatic index over every
	// span (or from walking spans_by_op) for them.
	if sel.filtered() {
		q += " AND +s.op IS NOT NULL"
	}
	for _, f := range []struct{ col, value string }{{"broadcaster", sel.Broadcaster}, {"topic", sel.Topic}} {
		if f.value != "" {
			args = append(args, f.value)
			q += fmt.Sprintf(" AND +s.%s = ?%d", f.col, len(args))
		}
	}
	return q, args
}

// Traces returns the ids of the traces that sel selects in the file db
// reads (a *sql.DB, *sql.Conn or *sql.Tx), sorted by their bytes.
func (sel TraceSelection) Traces(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]trace.TraceID, error) {
	q, args := sel.query()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("select traces: %w", err)
	}
	defer rows.Close()
	var match func(topic, glob string) bool
	dest := make([]any, 1, 3)
	var id []byte
	var topic, glob string
	dest[0] = &id
	if sel.Glob != "" {
		dest = append(dest, &topic, &glob)
		match = SpanGlobMatcher(sel.Glob)
	}
	seen := make(map[trace.TraceID]struct{})
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("select traces: %w", err)
		}
		if match != nil && !match(topic, glob) {
			continue
		}
		var tid trace.TraceID
		copy(tid[:], id)
		seen[tid] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select traces: %w", err)
	}
	out := make([]trace.TraceID, 0, len(seen))
	for tid := range seen {
		out = append(out, tid)
	}
	slices.SortFunc(out, func(a, b trace.TraceID) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}
