package otlp_test

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// FuzzSpans decodes OTLP/JSON or protobuf, converts it, and encodes and
// decodes each span's values as the file holds them: no panic, and what
// decodes is what was encoded. Seeds are in testdata/fuzz/FuzzSpans.
func FuzzSpans(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dec := range []func([]byte) (ptrace.Traces, error){otlp.UnmarshalJSON, otlp.UnmarshalProto} {
			td, err := dec(data)
			if err != nil {
				continue
			}
			spans, _, _ := otlp.Spans(td)
			for _, s := range spans {
				enc := schema.AppendAttributes(nil, s.Attributes, nil)
				back, err := schema.DecodeAttributes(enc, nil)
				if err != nil {
					t.Fatalf("decode %s: %v", enc, err)
				}
				again := schema.AppendAttributes(nil, back, nil)
				if string(again) != string(enc) {
					t.Fatalf("attributes changed:\n%s\n%s", enc, again)
				}
				if _, err := schema.DecodeEvents(schema.AppendSpanEvents(nil, s.Events)); err != nil {
					t.Fatalf("events: %v", err)
				}
				if _, err := schema.DecodeLinks(schema.AppendSpanLinks(nil, s.Links)); err != nil {
					t.Fatalf("links: %v", err)
				}
			}
			_ = otlp.Traces(spans)
		}
	})
}
