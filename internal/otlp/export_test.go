package otlp

import (
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// SetTraceLimit sets how many traces im keeps before it forgets, for the
// tests of forgetting.
func SetTraceLimit(im *Importer, n int) { im.limit = n }

// ReadTraces reads the spans of the traces ids from the file at path as
// Export does (traceReader), for comparing with schema.Reader.
func ReadTraces(path string, ids []trace.TraceID) ([]schema.Span, error) {
	r, err := openTraceReader(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Traces(ids)
}
