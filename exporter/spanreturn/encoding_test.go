package spanreturn

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

var (
	testTrace = trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	testT1    = time.Unix(1_760_000_000, 123_456_789)
)

// testSpans is a server span with two phases, using every attribute type.
func testSpans() []sdktrace.ReadOnlySpan {
	sc := func(id byte) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: testTrace, SpanID: trace.SpanID{id}, TraceFlags: trace.FlagsSampled})
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: testTrace, SpanID: trace.SpanID{0xc1}, TraceFlags: trace.FlagsSampled, Remote: true})
	res := resource.NewSchemaless(attribute.String("service.name", "broadcaster"), attribute.String("process.command_args", "left at home"))
	scope := instrumentation.Scope{Name: "broadcaster", Version: "v1.2.3"}
	at := func(ms int) time.Time { return testT1.Add(time.Duration(ms) * time.Millisecond) }
	stubs := []tracetest.SpanStub{
		{Name: "POST /v1/notify", SpanContext: sc(1), Parent: remote, SpanKind: trace.SpanKindServer,
			StartTime: at(0), EndTime: at(9), Resource: res, InstrumentationScope: scope,
			Attributes: []attribute.KeyValue{attribute.Int("http.response.status_code", 200)}},
		{Name: "find subscribers", SpanContext: sc(2), Parent: sc(1), StartTime: at(1), EndTime: at(5),
			Resource: res, InstrumentationScope: scope, Status: sdktrace.Status{Code: codes.Error, Description: "one failed"},
			Attributes: []attribute.KeyValue{
				attribute.Bool("b", true), attribute.Int64("i", -42), attribute.Float64("f", 1.5),
				attribute.String("messaging.destination.name", "news"), attribute.BoolSlice("bs", []bool{true, false}),
				attribute.Int64Slice("is", []int64{1, -2}), attribute.Float64Slice("fs", []float64{0.25}),
				attribute.StringSlice("ss", []string{"news", "x"}), attribute.ByteSlice("by", []byte{0, 1, 2}),
				attribute.Slice("sl", attribute.IntValue(1), attribute.StringValue("news")),
				attribute.Map("m", attribute.String("k", "v")),
			},
			Events: []sdktrace.Event{{Name: "subscriber found", Time: at(2), Attributes: []attribute.KeyValue{attribute.String("messaging.destination.name", "news")}}}},
		{Name: "send receive", SpanContext: sc(3), Parent: sc(2), StartTime: at(2), EndTime: at(4), Resource: res, InstrumentationScope: scope},
	}
	spans := make([]sdktrace.ReadOnlySpan, len(stubs))
	for i, s := range stubs {
		spans[i] = s.Snapshot()
	}
	return spans
}

func TestEncode_RoundTrip(t *testing.T) {
	spans := testSpans()
	res := spans[0].Resource().Attributes()
	data, kept := encode(testTrace, testT1, testT1.Add(10*time.Millisecond), res, spans, 1<<20, 100)
	if kept != 3 {
		t.Fatalf("kept = %d; want 3", kept)
	}
	a, err := decode(data, 100)
	if err != nil {
		t.Fatal(err)
	}
	if a.traceID != testTrace || a.t1 != testT1.UnixNano() || a.t2 != testT1.Add(10*time.Millisecond).UnixNano() || a.truncated || a.omitted != 0 {
		t.Errorf("answer header = %v %d %d %v %d", a.traceID, a.t1, a.t2, a.truncated, a.omitted)
	}
	if want := []attribute.KeyValue{attribute.String("service.name", "broadcaster")}; !reflect.DeepEqual(a.resource, want) {
		t.Errorf("resource = %v; want %v", a.resource, want)
	}
	for i, s := range spans {
		w := a.spans[i]
		if w.id != s.SpanContext().SpanID() || w.parent != s.Parent().SpanID() || w.parentRemote != s.Parent().IsRemote() ||
			w.name != s.Name() || w.kind != s.SpanKind() || w.code != s.Status().Code || w.desc != s.Status().Description ||
			w.scope != "broadcaster" || w.ver != "v1.2.3" || w.start != s.StartTime().UnixNano() || w.end != s.EndTime().UnixNano() {
			t.Errorf("spans[%d] = %+v; want %v", i, w, s.Name())
		}
		if !reflect.DeepEqual(attribute.NewSet(w.attrs...), attribute.NewSet(s.Attributes()...)) {
			t.Errorf("spans[%d] attributes = %v; want %v", i, w.attrs, s.Attributes())
		}
		if len(w.events) != len(s.Events()) {
			t.Fatalf("spans[%d] events = %d; want %d", i, len(w.events), len(s.Events()))
		}
		for j, e := range s.Events() {
			if w.events[j].name != e.Name || w.events[j].time != e.Time.UnixNano() || !reflect.DeepEqual(w.events[j].attrs, e.Attributes) {
				t.Errorf("spans[%d].events[%d] = %+v; want %+v", i, j, w.events[j], e)
			}
		}
	}
}

func TestEncode_Cut(t *testing.T) {
	spans := testSpans()
	// need is the smallest bound that keeps all three spans.
	need := 0
	for n := 0; need == 0; n++ {
		if _, kept := encode(testTrace, testT1, testT1, nil, spans, n, 100); kept == 3 {
			need = n
		}
	}
	for _, c := range []struct {
		name             string
		rawMax, maxSpans int
		kept             int
	}{
		{"All", need, 100, 3},
		{"ByBytes", need - 1, 100, 2},
		{"BySpans", 1 << 20, 1, 1},
		{"NothingFits", prefixMax + 5, 100, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, kept := encode(testTrace, testT1, testT1, nil, spans, c.rawMax, c.maxSpans)
			if kept != c.kept || len(data) > c.rawMax {
				t.Fatalf("kept %d in %d bytes; want %d in at most %d", kept, len(data), c.kept, c.rawMax)
			}
			a, err := decode(data, 100)
			if err != nil {
				t.Fatal(err)
			}
			if a.truncated != (kept < 3) || a.omitted != uint64(3-kept) || len(a.spans) != kept {
				t.Errorf("truncated %v, omitted %d, spans %d", a.truncated, a.omitted, len(a.spans))
			}
		})
	}
}

func TestDecode_Limits(t *testing.T) {
	data, _ := encode(testTrace, testT1, testT1, nil, testSpans(), 1<<20, 100)
	if _, err := decode(data, 2); !errors.Is(err, errTooMany) {
		t.Errorf("decode with limit 2 = %v; want errTooMany", err)
	}
	for i := range data {
		if _, err := decode(data[:i], 100); !errors.Is(err, errMalformed) {
			t.Fatalf("decode of the first %d bytes = %v; want errMalformed", i, err)
		}
	}
	if _, err := decode(append(bytes.Clone(data), 0), 100); !errors.Is(err, errMalformed) {
		t.Errorf("decode with a trailing byte = %v; want errMalformed", err)
	}
}

// FuzzDecode feeds the decoder and the receiver's checks arbitrary bytes:
// they must not panic, allocate beyond the input, or accept what they
// cannot give back.
func FuzzDecode(f *testing.F) {
	data, _ := encode(testTrace, testT1, testT1.Add(10*time.Millisecond), testSpans()[0].Resource().Attributes(), testSpans(), 1<<20, 100)
	f.Add(data)
	f.Add([]byte{wireVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decode(data, DefaultMaxSpans)
		if err != nil {
			if !errors.Is(err, errMalformed) && !errors.Is(err, errTooMany) {
				t.Fatalf("error %v is neither malformed nor too many", err)
			}
			return
		}
		if len(a.spans) > DefaultMaxSpans || len(a.spans)*25 > len(data) {
			t.Fatalf("%d spans from %d bytes", len(a.spans), len(data))
		}
		r := NewReceiver(tracetest.NewNoopExporter())
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: a.traceID, SpanID: trace.SpanID{0xc1}, TraceFlags: trace.FlagsSampled})
		t0 := time.Unix(0, a.t1)
		if _, err := r.check(a, sc, t0.UnixNano(), t0.UnixNano()+(a.t2-a.t1)); err == nil {
			r.localize(a, sc, t0.UnixNano(), t0.UnixNano()+(a.t2-a.t1))
		}
	})
}
