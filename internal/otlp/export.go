package otlp

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// tracesPerWrite is how many traces Export hands Writer.Write at once:
// one line of FormatJSONL.
const tracesPerWrite = 256

// Export writes every trace that sel selects in any of files to w,
// whole: the spans of the trace from every file, a span that sits in
// several files once. Traces go in order of trace id and the spans of a
// trace in order of start and span id, so that the same spans always
// give the same bytes. It returns the numbers of traces and spans written. It does not
// Close w.
func Export(ctx context.Context, files []string, sel schema.TraceSelection, w *Writer) (traces, spans int, err error) {
	readers := make([]*schema.Reader, len(files))
	ids := map[trace.TraceID]struct{}{}
	for i, path := range files {
		db, err := schema.OpenRead(ctx, path)
		if err != nil {
			return 0, 0, err
		}
		defer db.Close()
		readers[i] = schema.NewReader(db)
		got, err := sel.Traces(ctx, db)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", path, err)
		}
		for _, id := range got {
			ids[id] = struct{}{}
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
