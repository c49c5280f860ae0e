package otlp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// badName is the span name of issue 24: bytes ff c3 28, which import
// takes as they come.
const badName = "\xff\xc3("

// badTraces returns one span with invalid UTF-8 in every string OTLP
// has: names, keys, values (nested too), trace states, the status
// message, the scope's and the resource's fields.
func badTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://example.com/\xfe")
	rs.Resource().Attributes().PutStr("service.name", "svc\xff")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.SetSchemaUrl("scope-url\xc0")
	ss.Scope().SetName("lib\xff")
	ss.Scope().SetVersion("1.\xff")
	ss.Scope().Attributes().PutStr("k\xff", "v")
	p := ss.Spans().AppendEmpty()
	p.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	p.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	p.SetName(badName)
	p.TraceState().FromRaw("v=\xff")
	p.SetStartTimestamp(pcommon.Timestamp(1e18))
	p.SetEndTimestamp(pcommon.Timestamp(1e18 + 1000))
	p.Status().SetCode(ptrace.StatusCodeError)
	p.Status().SetMessage("failed \xe2\x82")
	a := p.Attributes()
	a.PutStr("key\xff", "value")
	a.PutStr("s", "value\xff")
	a.PutEmptySlice("strs").FromRaw([]any{"ok", "bad\xff"})
	a.PutEmptySlice("mixed").FromRaw([]any{"bad\xfe", int64(1)})
	a.PutEmptyMap("map").PutStr("inner\xff", "x\xff")
	ev := p.Events().AppendEmpty()
	ev.SetName("event\xff")
	ev.Attributes().PutStr("e", "\xff")
	l := p.Links().AppendEmpty()
	l.SetTraceID(pcommon.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	l.SetSpanID(pcommon.SpanID{8, 8, 8, 8, 8, 8, 8, 8})
	l.TraceState().FromRaw("l=\xff")
	l.Attributes().PutStr("la", "\xff")
	return td
}

// badFile stores badTraces in a new file and returns its path.
func badFile(t *testing.T) string {
	t.Helper()
	path := tempDB(t)
	exp := mustExporter(t, path)
	ctx := context.Background()
	if acc, _, _, err := otlp.Store(ctx, exp, badTraces(), otlp.Wait); err != nil || acc != 1 {
		t.Fatalf("Store = %d, %v; want 1 span", acc, err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return path
}

// strictProto decodes an OTLP protobuf request with protobuf-go, which,
// as a collector's gRPC and HTTP receivers do, refuses strings that are
// not UTF-8; it returns every string of the request.
func strictProto(t *testing.T, b []byte) []string {
	t.Helper()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatalf("protobuf-go refuses the request: %v", err)
	}
	var out []string
	var kvs func([]*commonpb.KeyValue)
	var val func(*commonpb.AnyValue)
	val = func(v *commonpb.AnyValue) {
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out = append(out, x.StringValue)
		case *commonpb.AnyValue_ArrayValue:
			for _, e := range x.ArrayValue.Values {
				val(e)
			}
		case *commonpb.AnyValue_KvlistValue:
			kvs(x.KvlistValue.Values)
		}
	}
	kvs = func(in []*commonpb.KeyValue) {
		for _, kv := range in {
			out = append(out, kv.Key)
			val(kv.Value)
		}
	}
	for _, rs := range req.ResourceSpans {
		out = append(out, rs.SchemaUrl)
		kvs(rs.Resource.GetAttributes())
		for _, ss := range rs.ScopeSpans {
			out = append(out, ss.SchemaUrl, ss.Scope.GetName(), ss.Scope.GetVersion())
			kvs(ss.Scope.GetAttributes())
			for _, s := range ss.Spans {
				out = append(out, s.Name, s.TraceState, s.Status.GetMessage())
				kvs(s.Attributes)
				for _, e := range s.Events {
					out = append(out, e.Name)
					kvs(e.Attributes)
				}
				for _, l := range s.Links {
					out = append(out, l.TraceState)
					kvs(l.Attributes)
				}
			}
		}
	}
	return out
}

// checkRepaired checks that the strings hold U+FFFD where the input had
// invalid bytes, the name as issue 24 gives it in particular.
func checkRepaired(t *testing.T, strs []string) {
	t.Helper()
	name, fffd := false, 0
	for _, s := range strs {
		if !utf8.ValidString(s) {
			t.Errorf("string %q is not UTF-8", s)
		}
		if s == "\uFFFD\uFFFD(" {
			name = true
		}
		if bytes.ContainsRune([]byte(s), utf8.RuneError) {
			fffd++
		}
	}
	if !name {
		t.Errorf("no string is %q (ff c3 28 repaired byte by byte) among %q", "\uFFFD\uFFFD(", strs)
	}
	// Every string badTraces spoilt: the ones the file repaired on the
	// way in (attribute values and the keys kept inline) count too.
	if fffd != 19 {
		t.Errorf("%d strings hold U+FFFD; want 19: %q", fffd, strs)
	}
}

// TestTraces_InvalidUTF8 checks the one conversion out of the file: the
// file keeps the bytes it was given, and every string that goes out is
// UTF-8, counted.
func TestTraces_InvalidUTF8(t *testing.T) {
	path := badFile(t)
	spans := readAll(t, path)
	if len(spans) != 1 || spans[0].Name != badName {
		t.Fatalf("stored name = %q; want the bytes given, %q", spans[0].Name, badName)
	}
	td, repaired := otlp.TracesRepaired(spans)
	if want := invalidStrings(spans[0]); repaired != want || want == 0 {
		t.Errorf("repaired = %d; want %d, the stored span's strings that are not UTF-8", repaired, want)
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	checkRepaired(t, strictProto(t, b))
	j, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(j) || !utf8.Valid(j) {
		t.Errorf("OTLP/JSON of the repaired traces is not JSON: %q", j)
	}
}

// invalidStrings counts the strings of s that are not UTF-8, its own way.
func invalidStrings(s schema.Span) int {
	n := 0
	count := func(strs ...string) {
		for _, x := range strs {
			if !utf8.ValidString(x) {
				n++
			}
		}
	}
	var kvs func([]attribute.KeyValue)
	kvs = func(in []attribute.KeyValue) {
		for _, kv := range in {
			count(string(kv.Key))
			switch kv.Value.Type() {
			case attribute.STRING:
				count(kv.Value.AsString())
			case attribute.STRINGSLICE:
				count(kv.Value.AsStringSlice()...)
			case attribute.SLICE:
				for _, v := range kv.Value.AsSlice() {
					kvs([]attribute.KeyValue{{Key: "", Value: v}})
				}
			case attribute.MAP:
				kvs(kv.Value.AsMap())
			}
		}
	}
	count(s.Resource.SchemaURL, s.Scope.SchemaURL, s.Scope.Name, s.Scope.Version, s.Name, s.TraceState, s.StatusMsg)
	kvs(s.Resource.Attributes)
	kvs(s.Scope.Attributes)
	kvs(s.Attributes)
	for _, e := range s.Events {
		count(e.Name)
		kvs(e.Attributes)
	}
	for _, l := range s.Links {
		count(l.TraceState)
		kvs(l.Attributes)
	}
	return n
}

// TestExport_InvalidUTF8 checks every format of export: JSON that is
// JSON, protobuf that protobuf-go takes, the strings repaired.
func TestExport_InvalidUTF8(t *testing.T) {
	path := badFile(t)
	for _, f := range []otlp.Format{otlp.FormatJSON, otlp.FormatJSONL, otlp.FormatProto} {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			w := otlp.NewWriter(&buf, f)
			if _, _, err := otlp.Export(context.Background(), []string{path}, schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64}, w); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if f == otlp.FormatProto {
				checkRepaired(t, strictProto(t, buf.Bytes()))
				return
			}
			sc := bufio.NewScanner(&buf)
			sc.Buffer(nil, 1<<20)
			lines := 0
			for sc.Scan() {
				lines++
				if !json.Valid(sc.Bytes()) || !utf8.Valid(sc.Bytes()) {
					t.Fatalf("line %d is not JSON: %q", lines, sc.Bytes())
				}
				// Through the collector's decoder and protobuf-go's
				// strict one: what a receiver of the file would do.
				req := ptraceotlp.NewExportRequest()
				if err := req.UnmarshalJSON(sc.Bytes()); err != nil {
					t.Fatal(err)
				}
				b, err := req.MarshalProto()
				if err != nil {
					t.Fatal(err)
				}
				checkRepaired(t, strictProto(t, b))
			}
			if lines != 1 {
				t.Errorf("%d lines; want 1", lines)
			}
		})
	}
}

// TestTraceJSON_InvalidUTF8 checks the viewer's download of one trace.
func TestTraceJSON_InvalidUTF8(t *testing.T) {
	b, err := otlp.TraceJSON(readAll(t, badFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) || !utf8.Valid(b) {
		t.Fatalf("TraceJSON is not JSON: %q", b)
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	checkRepaired(t, strictProto(t, pb))
}
