package otlp_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
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
