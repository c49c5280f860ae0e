package otlp_test

import (
	"context"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
)

// TestRoundTrip stores OTLP traces through the exporter's writer, reads
// the file back and converts it to OTLP: every field of every span is the
// input's, order aside.
func TestRoundTrip(t *testing.T) {
	in := richTraces(60, 1)
	path := tempDB(t)
	exp := mustExporter(t, path)
	ctx := context.Background()
	acc, rej, msg, err := otlp.Store(ctx, exp, in, otlp.Wait)
	if err != nil || acc != 60 || rej != 0 || msg != "" {
		t.Fatalf("Store = %d, %d, %q, %v; want 60, 0, \"\", nil", acc, rej, msg, err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := readAll(t, path)
	out := otlp.Traces(spans)
	otlptest.DiffLines(t, otlptest.SpanLines(t, out), otlptest.SpanLines(t, in))

	// The pub/sub columns come from the conventions' attributes.
	for _, s := range spans {
		if s.PubSub.Op != "notify" || s.PubSub.Subscribers != 3 || s.PubSub.Broadcaster != "b-1" || s.PubSub.Topic == "" {
			t.Fatalf("span %d pubsub = %+v; want notify, 3 subscribers, b-1, a topic", s.ID, s.PubSub)
		}
	}

	// Through OTLP/JSON and protobuf and back, still the same.
	var jm ptrace.JSONMarshaler
	b, err := jm.MarshalTraces(out)
	if err != nil {
		t.Fatal(err)
	}
	var ju ptrace.JSONUnmarshaler
	back, err := ju.UnmarshalTraces(b)
	if err != nil {
		t.Fatal(err)
	}
	otlptest.DiffLines(t, otlptest.SpanLines(t, back), otlptest.SpanLines(t, in))
}

// TestSpanLines_SeesChanges guards the round trip's comparison: a change
// deep in a value, a float that became an int, a flag bit, all differ.
func TestSpanLines_SeesChanges(t *testing.T) {
	want := otlptest.SpanLines(t, richTraces(3, 1))
	for name, change := range map[string]func(ptrace.Span){
		"NestedValue": func(p ptrace.Span) {
			v, _ := p.Attributes().Get("nested")
			v.Slice().At(0).Slice().At(1).SetInt(3)
		},
		"FloatToInt": func(p ptrace.Span) { p.Attributes().PutInt("whole", 2) },
		"FlagBit8":   func(p ptrace.Span) { p.SetFlags(p.Flags() ^ 0x100) },
		"LinkFlags":  func(p ptrace.Span) { p.Links().At(0).SetFlags(0) },
		"EventTime":  func(p ptrace.Span) { p.Events().At(0).SetTimestamp(1) },
	} {
		t.Run(name, func(t *testing.T) {
			td := richTraces(3, 1)
			p := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0) // span 1
			if name == "EventTime" {
				p = td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0) // span 0
			}
			change(p)
			got := otlptest.SpanLines(t, td)
			same := true
			for i := range got {
				same = same && got[i] == want[i]
			}
			if same {
				t.Fatal("SpanLines does not see the change")
			}
		})
	}
}
