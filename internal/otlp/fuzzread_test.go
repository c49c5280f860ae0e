package otlp_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// FuzzReadFile reads one request as a file, a resourceSpans element at a
// time, and checks it against pdata decoding it whole: what pdata
// decodes, ReadFile reads to the same request.
func FuzzReadFile(f *testing.F) {
	req := ptraceotlp.NewExportRequestFromTraces(richTraces(3, 9))
	js, _ := req.MarshalJSON()
	pb, _ := req.MarshalProto()
	f.Add(js, false)
	f.Add(pb, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a"}]}]}],"x":{"y":[1,2]}}`), false)
	f.Add(append([]byte{0x78, 0x05}, pb...), true)
	f.Fuzz(func(t *testing.T, data []byte, proto bool) {
		dec, name := otlp.UnmarshalJSON, "in.json"
		if proto {
			dec, name = otlp.UnmarshalProto, "in.pb"
		}
		want, err := dec(data)
		if err != nil || !proto && (!json.Valid(data) || bytes.Count(bytes.TrimSpace(data), []byte("\n")) > 0) {
			// pdata refuses it; or it is not JSON, which pdata's lenient
			// decoder may take ("}") and ReadFile refuses; or it may be a
			// lines file: nothing to compare.
			return
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got := ptrace.NewTraces()
		err = otlp.ReadFile(path, func(td ptrace.Traces, _ int) error {
			td.ResourceSpans().MoveAndAppendTo(got.ResourceSpans())
			return nil
		})
		if err != nil {
			t.Fatalf("pdata decodes %q whole; ReadFile: %v", data, err)
		}
		w, _ := ptraceotlp.NewExportRequestFromTraces(want).MarshalProto()
		g, _ := ptraceotlp.NewExportRequestFromTraces(got).MarshalProto()
		if !bytes.Equal(w, g) {
			t.Fatalf("ReadFile read %d spans (%d bytes), pdata %d spans (%d bytes)", got.SpanCount(), len(g), want.SpanCount(), len(w))
		}
	})
}
