package otlp_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// TestWriter_Stream writes traces in several Writes, as Export does, and
// checks that the stream is byte for byte the request of all of them
// marshalled at once by pdata, and reads back whole.
func TestWriter_Stream(t *testing.T) {
	parts := []ptrace.Traces{richTraces(7, 1), richTraces(1, 2), ptrace.NewTraces(), richTraces(12, 3)}
	all := ptrace.NewTraces()
	for _, p := range parts {
		for i := range p.ResourceSpans().Len() {
			p.ResourceSpans().At(i).CopyTo(all.ResourceSpans().AppendEmpty())
		}
	}
	req := ptraceotlp.NewExportRequestFromTraces(all)
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		format otlp.Format
		ext    string
		want   []byte
	}{{otlp.FormatJSON, ".json", append(js, '\n')}, {otlp.FormatProto, ".pb", pb}} {
		t.Run(string(c.format), func(t *testing.T) {
			var buf bytes.Buffer
			w := otlp.NewWriter(&buf, c.format)
			for _, p := range parts {
				if err := w.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), c.want) {
				t.Fatalf("stream = %d bytes, differs from the request marshalled whole (%d bytes)", buf.Len(), len(c.want))
			}
			path := filepath.Join(t.TempDir(), "all"+c.ext)
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			spans := 0
			if err := otlp.ReadFile(path, func(td ptrace.Traces, _ int) error { spans += td.SpanCount(); return nil }); err != nil {
				t.Fatal(err)
			}
			if spans != all.SpanCount() {
				t.Fatalf("read back %d spans; want %d", spans, all.SpanCount())
			}
		})
	}
	t.Run("Empty", func(t *testing.T) {
		for _, f := range []otlp.Format{otlp.FormatJSON, otlp.FormatProto} {
			var buf bytes.Buffer
			w := otlp.NewWriter(&buf, f)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := ptraceotlp.NewExportRequest().MarshalProto()
			if f == otlp.FormatJSON {
				b, _ = ptraceotlp.NewExportRequest().MarshalJSON()
				b = append(b, '\n')
			}
			if !bytes.Equal(buf.Bytes(), b) {
				t.Errorf("%s of nothing = %q; want %q", f, buf.Bytes(), b)
			}
		}
	})
}
