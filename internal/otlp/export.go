package otlp

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Selection says which traces Export writes: those with a span that
// starts in [Since, Until) (any start with SinceBeginning) and, when a
// filter is set, is a pub/sub operation that passes it, as the viewer's
// filters: Broadcaster and Topic exact, Glob matching the topic (SQLite's
// GLOB, with fnmatch's [!…] read as [^…]) or equal to the span's own glob.
type Selection struct {
	Since, Until             time.Time
	SinceBeginning           bool
	Broadcaster, Topic, Glob string
}

// tracesPerWrite is how many traces Export hands Writer.Write at once:
// one line of FormatJSONL.
const tracesPerWrite = 256

// Export writes every trace of files that sel selects to w, whole: the
// spans of the trace from every file, a span that sits in several files
// once. Traces go in order of trace id and the spans of a trace in order
// of start and span id, so that the same spans always give the same
// bytes. It returns the numbers of traces and spans written. It does not
// Close w.
func Export(ctx context.Context, files []string, sel Selection, w *Writer) (traces, spans int, err error) {
	readers := make([]*schema.Reader, len(files))
	ids := map[trace.TraceID]struct{}{}
	for i, path := range files {
		db, err := schema.OpenRead(ctx, path)
		if err != nil {
			return 0, 0, err
		}
		defer db.Close()
		readers[i] = schema.NewReader(db)
		if err := selectTraces(ctx, db, sel, ids); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	sorted := make([]trace.TraceID, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.SortFunc(sorted, func(a, b trace.TraceID) int { return bytes.Compare(a[:], b[:]) })
	for len(sorted) > 0 {
		n := min(len(sorted), tracesPerWrite)
		var chunk []schema.Span
		for _, id := range sorted[:n] {
			got, err := traceSpans(ctx, readers, files, id)
			if err != nil {
				return traces, spans, err
			}
			chunk = append(chunk, got...)
		}
		if err := w.Write(Traces(chunk)); err != nil {
			return traces, spans, err
		}
		traces += n
		spans += len(chunk)
		sorted = sorted[n:]
	}
	return traces, spans, nil
}

func selectTraces(ctx context.Context, db *sql.DB, sel Selection, ids map[trace.TraceID]struct{}) error {
	since := int64(math.MinInt64)
	if !sel.SinceBeginning {
		since = sel.Since.UnixNano()
	}
	until := int64(math.MaxInt64)
	if !sel.Until.IsZero() {
		until = sel.Until.UnixNano()
	}
	q := `SELECT DISTINCT t.trace_id FROM spans AS s JOIN traces AS t ON t.id = s.trace
WHERE s.start_ns >= ? AND s.start_ns < ?`
	args := []any{since, until}
	if sel.Broadcaster != "" || sel.Topic != "" || sel.Glob != "" {
		q += " AND s.op IS NOT NULL"
	}
	if sel.Broadcaster != "" {
		q += " AND s.broadcaster = ?"
		args = append(args, sel.Broadcaster)
	}
	if sel.Topic != "" {
		q += " AND s.topic = ?"
		args = append(args, sel.Topic)
	}
	if sel.Glob != "" {
		q += " AND (s.topic GLOB ? OR s.glob = ?)"
		args = append(args, strings.ReplaceAll(sel.Glob, "[!", "[^"), sel.Glob)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		var id trace.TraceID
		copy(id[:], b)
		ids[id] = struct{}{}
	}
	return rows.Err()
}

// traceSpans returns the spans of trace id from every reader, each span
// once, in order of start and span id.
func traceSpans(ctx context.Context, readers []*schema.Reader, files []string, id trace.TraceID) ([]schema.Span, error) {
	var out []schema.Span
	seen := map[trace.SpanID]struct{}{}
	for i, r := range readers {
		got, err := r.Trace(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("%s: trace %s: %w", files[i], id, err)
		}
		for _, s := range got {
			if _, dup := seen[s.SpanID]; dup {
				continue
			}
			seen[s.SpanID] = struct{}{}
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b schema.Span) int {
		return cmp.Or(a.Start.Compare(b.Start), bytes.Compare(a.SpanID[:], b.SpanID[:]))
	})
	return out, nil
}

// TraceJSON returns spans, those of one trace as schema.Reader.Trace
// gives them, as one OTLP/JSON ExportTraceServiceRequest: the download
// that Jaeger's and the Aspire dashboard's upload take.
func TraceJSON(spans []schema.Span) ([]byte, error) {
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b schema.Span) int {
		return cmp.Or(a.Start.Compare(b.Start), bytes.Compare(a.SpanID[:], b.SpanID[:]))
	})
	return ptraceotlp.NewExportRequestFromTraces(Traces(sorted)).MarshalJSON()
}
