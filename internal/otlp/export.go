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
	return ExportCounting(ctx, files, sel, w, nil)
}

// Counter is told how many traces an export holds, and each time some
// are written; a progress meter.
type Counter interface {
	SetTotal(n int64)
	Add(n int64)
}

// ExportCounting is Export telling c, when not nil, the number of
// traces selected and those written.
func ExportCounting(ctx context.Context, files []string, sel schema.TraceSelection, w *Writer, c Counter) (traces, spans int, err error) {
	readers := make([]*traceReader, len(files))
	ids := map[trace.TraceID]struct{}{}
	for i, path := range files {
		db, err := schema.OpenRead(ctx, path)
		if err != nil {
			return 0, 0, err
		}
		defer db.Close()
		if readers[i], err = openTraceReader(path); err != nil {
			return 0, 0, err
		}
		defer readers[i].Close()
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
	if c != nil {
		c.SetTotal(int64(len(sorted)))
	}
	// Reading a chunk (SQLite, decoding the rows: three quarters of the
	// work) and writing the one before it (pdata, marshalling) overlap on
	// two goroutines. The channel holds one chunk, so memory holds at
	// most three: one being read, one waiting, one being written.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type chunk struct {
		traces int
		spans  []schema.Span
		err    error
	}
	chunks := make(chan chunk, 1)
	var stopped error // the reader's ctx error, when it ended early; read after chunks closes
	go func() {
		defer close(chunks)
		for len(sorted) > 0 {
			n := min(len(sorted), tracesPerWrite)
			got, err := chunkSpans(ctx, readers, files, sorted[:n])
			select {
			case chunks <- chunk{traces: n, spans: got, err: err}:
			case <-ctx.Done():
				stopped = ctx.Err()
				return
			}
			if err != nil {
				return
			}
			sorted = sorted[n:]
		}
	}()
	// Wait for the reader before the deferred Closes of its files.
	defer func() {
		cancel()
		for range chunks {
		}
	}()
	for ch := range chunks {
		if ch.err != nil {
			return traces, spans, ch.err
		}
		if err := w.Write(Traces(ch.spans)); err != nil {
			return traces, spans, err
		}
		traces += ch.traces
		spans += len(ch.spans)
		if c != nil {
			c.Add(int64(ch.traces))
		}
	}
	// The reader stopped early for the caller's ctx: not every trace was
	// written.
	return traces, spans, stopped
}

// chunkSpans returns the spans of the traces ids from every reader, one
// query per reader: each span once (the first file's, by span id within
// its trace), in order of trace id, then start and span id.
func chunkSpans(ctx context.Context, readers []*traceReader, files []string, ids []trace.TraceID) ([]schema.Span, error) {
	var all []schema.Span
	seen := make(map[[24]byte]struct{})
	for i, r := range readers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		got, err := r.Traces(ids)
		if err != nil {
			return nil, fmt.Errorf("%s: %d traces from %s: %w", files[i], len(ids), ids[0], err)
		}
		for _, s := range got {
			var k [24]byte
			copy(k[:16], s.TraceID[:])
			copy(k[16:], s.SpanID[:])
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			all = append(all, s)
		}
	}
	slices.SortStableFunc(all, func(a, b schema.Span) int {
		return cmp.Or(bytes.Compare(a.TraceID[:], b.TraceID[:]), a.Start.Compare(b.Start), bytes.Compare(a.SpanID[:], b.SpanID[:]))
	})
	return all, nil
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
