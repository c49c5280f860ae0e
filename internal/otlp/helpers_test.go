package otlp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// richTraces returns traces that use every field of an OTLP span and
// every AnyValue type, n spans in all, over two resources and three
// scopes. seed varies the ids.
func richTraces(n int, seed byte) ptrace.Traces {
	td := ptrace.NewTraces()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for r := range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", fmt.Sprintf("svc-%d", r))
		ra.PutInt("process.pid", int64(1000+r))
		ra.PutEmptySlice("process.command_args").FromRaw([]any{"node", "app.js"})
		for sc := range 2 - r {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl(fmt.Sprintf("https://example.com/scope/%d", sc))
			ss.Scope().SetName(fmt.Sprintf("lib-%d-%d", r, sc))
			ss.Scope().SetVersion("1.2.3")
			ss.Scope().Attributes().PutBool("scope.flag", sc == 0)
		}
	}

	for i := range n {
		rs := td.ResourceSpans().At(i % 2)
		ss := rs.ScopeSpans().At(i % rs.ScopeSpans().Len())
		p := ss.Spans().AppendEmpty()
		tid := pcommon.TraceID{seed, byte(i / 3 >> 16), byte(i / 3 >> 8), byte(i / 3), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
		p.SetTraceID(tid)
		p.SetSpanID(pcommon.SpanID{seed, 0xaa, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 1, 1})
		if i%3 != 0 {
			p.SetParentSpanID(pcommon.SpanID{seed, 0xaa, byte((i - 1) >> 24), byte((i - 1) >> 16), byte((i - 1) >> 8), byte(i - 1), 1, 1})
		}
		switch i % 4 {
		case 0:
			p.SetFlags(1)
		case 1:
			p.SetFlags(0x101)
		case 2:
			p.SetFlags(0x301)
		case 3:
			p.SetFlags(0x100)
		}
		if i%2 == 0 {
			p.TraceState().FromRaw("vendor=a:b,other=c")
		}
		p.SetName(fmt.Sprintf("op %d", i%7))
		p.SetKind(ptrace.SpanKind(i % 6))
		st := base.Add(time.Duration(i) * time.Millisecond)
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
		p.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(1500 * time.Microsecond)))
		p.Status().SetCode(ptrace.StatusCode(i % 3))
		if i%3 == 2 {
			p.Status().SetMessage("it failed: \"quoted\" <b>")
		}
		a := p.Attributes()
		a.PutStr("messaging.operation.name", "notify")
		a.PutStr("messaging.destination.name", fmt.Sprintf("orders/%d", i%5))
		a.PutInt("messaging.message.body.size", int64(i*10))
		a.PutInt("lonelytrace.subscribers", 3)
		a.PutBool("lonelytrace.stateful", i%2 == 0)
		a.PutStr("lonelytrace.broadcaster", "b-1")
		a.PutDouble("d", 1.5)
		a.PutDouble("whole", 2)
		a.PutDouble("inf", math.Inf(-1))
		a.PutInt("big", math.MinInt64)
		a.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2, 0xff})
		a.PutEmptyBytes("nobytes")
		a.PutEmpty("empty")
		a.PutEmptySlice("strs").FromRaw([]any{"a", "b"})
		a.PutEmptySlice("ints").FromRaw([]any{int64(1), int64(-2)})
		a.PutEmptySlice("floats").FromRaw([]any{1.0, 2.5})
		a.PutEmptySlice("bools").FromRaw([]any{true, false})
		a.PutEmptySlice("none")
		a.PutEmptySlice("mixed").FromRaw([]any{"a", int64(1), 2.0, true, []byte{9}, nil})
		a.PutEmptySlice("nested").FromRaw([]any{[]any{int64(1), int64(2)}, []any{"x"}, map[string]any{"k": "v"}, []any{}})
		m := a.PutEmptyMap("map")
		m.PutStr("s", "v")
		m.PutInt("float", 7) // the name of a tag, as a member
		m.PutEmptyMap("inner").PutEmptySlice("l").FromRaw([]any{int64(1), "two"})
		m.PutEmptyMap("emptymap")
		p.SetDroppedAttributesCount(uint32(i % 4))
		p.SetDroppedEventsCount(uint32(i % 3))
		p.SetDroppedLinksCount(uint32(i % 2))
		if i%2 == 0 {
			ev := p.Events().AppendEmpty()
			ev.SetName("retry")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Microsecond)))
			ev.Attributes().PutInt("attempt", 2)
			ev.Attributes().PutEmptyBytes("raw").FromRaw([]byte("hi"))
			ev.SetDroppedAttributesCount(1)
			p.Events().AppendEmpty().SetName("bare")
		}
		if i%3 == 1 {
			l := p.Links().AppendEmpty()
			l.SetTraceID(pcommon.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, byte(i)})
			l.SetSpanID(pcommon.SpanID{8, 8, 8, 8, 8, 8, 8, byte(i)})
			l.SetFlags(uint32(0x301 - (i%2)*0x200))
			l.TraceState().FromRaw("k=v")
			l.Attributes().PutEmptyMap("m").PutStr("a", "b")
			l.SetDroppedAttributesCount(3)
			p.Links().AppendEmpty().SetSpanID(pcommon.SpanID{7, 7, 7, 7, 7, 7, 7, 7})
		}

	}
	return td
}

// flat is one span of a ptrace.Traces with its resource and scope, in a
// form reflect.DeepEqual compares regardless of the order of spans,
// resources, scopes and attributes.
type flat struct {
	Resource, Scope, Span string
}

func flatten(t testing.TB, td ptrace.Traces) []flat {
	t.Helper()
	var out []flat
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := canon(t, map[string]any{"url": rs.SchemaUrl(), "attrs": rs.Resource().Attributes().AsRaw(), "dropped": rs.Resource().DroppedAttributesCount()})
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j)
			sc := ss.Scope()
			scope := canon(t, map[string]any{"url": ss.SchemaUrl(), "name": sc.Name(), "version": sc.Version(), "attrs": sc.Attributes().AsRaw(), "dropped": sc.DroppedAttributesCount()})
			for k := range ss.Spans().Len() {
				p := ss.Spans().At(k)
				var evs, links []any
				for e := range p.Events().All() {
					_, ev := e, p.Events().At(e)
					evs = append(evs, map[string]any{"name": ev.Name(), "t": ev.Timestamp(), "attrs": ev.Attributes().AsRaw(), "dropped": ev.DroppedAttributesCount()})
				}
				for l := range p.Links().All() {
					ln := p.Links().At(l)
					links = append(links, map[string]any{"tid": ln.TraceID().String(), "sid": ln.SpanID().String(), "flags": ln.Flags(), "ts": ln.TraceState().AsRaw(), "attrs": ln.Attributes().AsRaw(), "dropped": ln.DroppedAttributesCount()})
				}
				out = append(out, flat{res, scope, canon(t, map[string]any{
					"tid": p.TraceID().String(), "sid": p.SpanID().String(), "parent": p.ParentSpanID().String(),
					"flags": p.Flags(), "ts": p.TraceState().AsRaw(), "name": p.Name(), "kind": p.Kind(),
					"start": p.StartTimestamp(), "end": p.EndTimestamp(), "status": p.Status().Code(), "msg": p.Status().Message(),
					"attrs": rawTyped(p.Attributes()), "dattrs": p.DroppedAttributesCount(), "devents": p.DroppedEventsCount(),
					"dlinks": p.DroppedLinksCount(), "events": evs, "links": links,
				})})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Span < out[j].Span })
	return out
}

// rawTyped is m with each value's type beside it, so that 2.0 and 2 differ.
func rawTyped(m pcommon.Map) map[string]any {
	out := map[string]any{}
	for k, v := range m.All() {
		out[k] = typed(v)
	}
	return out
}

func typed(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		var s []any
		for _, e := range v.Slice().All() {
			s = append(s, typed(e))
		}
		return []any{"slice", s}
	case pcommon.ValueTypeMap:
		return []any{"map", rawTyped(v.Map())}
	case pcommon.ValueTypeDouble:
		if math.IsInf(v.Double(), 0) || math.IsNaN(v.Double()) {
			return []any{"double", v.AsString()}
		}
	}
	return []any{v.Type().String(), v.AsRaw()}
}

func canon(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v) // sorts map keys
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustExporter(tb testing.TB, path string) *exporter.Exporter {
	tb.Helper()
	exp, err := exporter.New(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { exp.Shutdown(context.Background()) })
	return exp
}

// readAll returns every span of the file at path.
func readAll(tb testing.TB, path string) []schema.Span {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	r := schema.NewReader(db)
	var out []schema.Span
	var after int64
	for {
		page, err := r.After(context.Background(), after, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].ID
	}
}

func tempDB(tb testing.TB) string { return filepath.Join(tb.TempDir(), "traces.db") }

func diffFlat(t *testing.T, got, want []flat) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("spans = %d; want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("span %d differs:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func sortFlat(f []flat) { sort.Slice(f, func(i, j int) bool { return f[i].Span < f[j].Span }) }
