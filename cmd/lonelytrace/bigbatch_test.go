package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
)

// TestImport_LargeBatches imports files of one request with more distinct
// traces than the writer's trace cache holds, as protobuf and JSON, then
// exports the file and imports that again: every span is stored each
// time. Such files used to fail whole ("was not resolved").
func TestImport_LargeBatches(t *testing.T) {
	const n = 16385
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "big")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0xb1, 0x9b, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		sp.SetSpanID(pcommon.SpanID{0x5b, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 6, 7, 8})
		sp.SetName("notify")
		sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000))
		sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000 + 500))
	}
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		body []byte
	}{{"big.pb", pb}, {"big.json", js}} {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join(dir, c.name)
			if err := os.WriteFile(in, c.body, 0o644); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(dir, c.name+".db")
			var out bytes.Buffer
			if err := run([]string{"import", "-db", db, in}, &out); err != nil {
				t.Fatalf("import: %v (%s)", err, out.String())
			}
			if got := otlptest.StoredSpans(t, db); got != n {
				t.Fatalf("imported %d spans; want %d (%s)", got, n, out.String())
			}
			// Export what was stored, in the same format, and import it
			// into a new file.
			format := "otlp-proto"
			if strings.HasSuffix(c.name, ".json") {
				format = "otlp-json"
			}
			again := filepath.Join(dir, "again-"+c.name)
			if err := run([]string{"export", "-format", format, "-o", again, db}, &out); err != nil {
				t.Fatalf("export: %v", err)
			}
			db2 := db + ".2"
			if err := run([]string{"import", "-db", db2, again}, &out); err != nil {
				t.Fatalf("import of the export: %v", err)
			}
			if got := otlptest.StoredSpans(t, db2); got != n {
				t.Errorf("imported %d spans of the export; want %d", got, n)
			}
		})
	}
}
