// Package otlptest compares OTLP traces in tests: the spans of two
// ptrace.Traces are the same, field by field, exactly when their
// SpanLines are equal, whatever the order of spans, resources, scopes and
// attributes. The round trips of internal/otlp and internal/replay are
// checked with it. StoredSpanIDs reads what a trace file holds, span id
// by span id, for the tests that compare it with what was acknowledged.
package otlptest

import (
	"encoding/json"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// SpanLines renders each span of td, with its resource and scope, as one
// line of canonical JSON, sorted: two Traces hold the same spans exactly
// when their lines are equal, whatever the order of spans, resources,
// scopes and attributes.
func SpanLines(t testing.TB, td ptrace.Traces) []string {
	t.Helper()
	var out []string
	for _, rs := range td.ResourceSpans().All() {
		res := map[string]any{"url": rs.SchemaUrl(), "attrs": typedMap(rs.Resource().Attributes()), "dropped": rs.Resource().DroppedAttributesCount()}
		for _, ss := range rs.ScopeSpans().All() {
			sc := ss.Scope()
			scope := map[string]any{"url": ss.SchemaUrl(), "name": sc.Name(), "version": sc.Version(), "attrs": typedMap(sc.Attributes()), "dropped": sc.DroppedAttributesCount()}
			for _, p := range ss.Spans().All() {
				var evs, links []any
				for _, ev := range p.Events().All() {
					evs = append(evs, []any{ev.Name(), uint64(ev.Timestamp()), typedMap(ev.Attributes()), ev.DroppedAttributesCount()})
				}
				for _, l := range p.Links().All() {
					links = append(links, []any{l.TraceID().String(), l.SpanID().String(), l.Flags(), l.TraceState().AsRaw(), typedMap(l.Attributes()), l.DroppedAttributesCount()})
				}
				b, err := json.Marshal(map[string]any{
					"resource": res, "scope": scope,
					"trace": p.TraceID().String(), "span": p.SpanID().String(), "parent": p.ParentSpanID().String(),
					"flags": p.Flags(), "state": p.TraceState().AsRaw(), "name": p.Name(), "kind": int(p.Kind()),
					"start": uint64(p.StartTimestamp()), "end": uint64(p.EndTimestamp()),
					"status": []any{int(p.Status().Code()), p.Status().Message()}, "attrs": typedMap(p.Attributes()),
					"dropped": []uint32{p.DroppedAttributesCount(), p.DroppedEventsCount(), p.DroppedLinksCount()},
					"events":  evs, "links": links,
				})
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, string(b))
			}
		}
	}
	slices.Sort(out)
	return out
}

// typedMap is m with every value's type beside it, so that 2.0 and 2, or
// a string and bytes, differ.
func typedMap(m pcommon.Map) map[string]any {
	out := map[string]any{}
	for k, v := range m.All() {
		out[k] = typedValue(v)
	}
	return out
}

func typedValue(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		var s []any
		for _, e := range v.Slice().All() {
			s = append(s, typedValue(e))
		}
		return []any{"slice", s}
	case pcommon.ValueTypeMap:
		return []any{"map", typedMap(v.Map())}
	}
	return []any{v.Type().String(), v.AsString()}
}

// DiffLines fails t at the first span of got that differs from want,
// showing both.
func DiffLines(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("spans = %d; want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("span %d differs:\n got  %s\n want %s", i, got[i], want[i])
		}
	}
}
