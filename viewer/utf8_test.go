package viewer_test

import (
	"context"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTraceOTLP_InvalidUTF8: a span whose name and attribute the
// application gave as bytes that are not UTF-8 (ff c3 28, as in issue 24)
// downloads as OTLP/JSON that is UTF-8, which a collector's decoder and
// protobuf-go's strict one both take, the bytes replaced by U+FFFD.
func TestTraceOTLP_InvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	r := newRecorder()
	_, s := r.tracer.Start(context.Background(), "\xff\xc3(", trace.WithTimestamp(testNow.Add(-1e9)),
		trace.WithAttributes(attribute.String("k\xfe", "v")))
	s.End(trace.WithTimestamp(testNow))
	path := filepath.Join(dir, "a.db")
	writeSpans(t, path, r.c.take())
	base := server(t, mustOpen(t, testNow, path))
	id := s.SpanContext().TraceID().String()

	code, body := get(t, base, "/api/traces/"+id+"?format=otlp", nil)
	if code != 200 || !utf8.Valid(body) {
		t.Fatalf("otlp download: status %d, UTF-8 %v; want 200 and UTF-8: %q", code, utf8.Valid(body), body)
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(body); err != nil {
		t.Fatal(err)
	}
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	var strict coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(pb, &strict); err != nil {
		t.Fatalf("protobuf-go refuses the download: %v", err)
	}
	sp := strict.ResourceSpans[0].ScopeSpans[0].Spans[0]
	if sp.Name != "\uFFFD\uFFFD(" || sp.Attributes[0].Key != "k\uFFFD" {
		t.Errorf("name, key = %q, %q; want %q, %q", sp.Name, sp.Attributes[0].Key, "\uFFFD\uFFFD(", "k\uFFFD")
	}

	// The plain JSON of the trace is UTF-8 too (encoding/json repairs).
	if code, body := get(t, base, "/api/traces/"+id, nil); code != 200 || !utf8.Valid(body) {
		t.Errorf("trace JSON: status %d, UTF-8 %v; want 200 and UTF-8", code, utf8.Valid(body))
	}
}
