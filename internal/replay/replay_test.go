package replay_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/replay"
)

// collector is a real OTLP/HTTP receiver on loopback that refuses every
// other request with 503 when flaky.
type collector struct {
	srv   *httptest.Server
	flaky bool

	mu        sync.Mutex
	requests  int
	refused   int
	spans     map[string]received // by span id, hex
	duplicate int
}

type received struct {
	span     *tracepb.Span
	resource *tracepb.ResourceSpans
	scope    *tracepb.ScopeSpans
}

func newCollector(t *testing.T, flaky bool) *collector {
	t.Helper()
	c := &collector{flaky: flaky, spans: map[string]received{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces of protobuf", http.StatusNotFound)
		return
	}
	if c.flaky && c.requests%2 == 1 {
		c.refused++
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				id := hex.EncodeToString(s.SpanId)
				if _, ok := c.spans[id]; ok {
					c.duplicate++
				}
				c.spans[id] = received{span: s, resource: rs, scope: ss}
			}
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// stubs makes n spans that use every field a trace file stores.
func stubs(n int) tracetest.SpanStubs {
	r := rand.New(rand.NewPCG(1, 2))
	id := func(b []byte) {
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		b[0] |= 1
	}
	orders := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "orders"), attribute.Int("process.pid", 42))
	broadcaster := resource.NewSchemaless(attribute.String("service.name", "broadcaster-1"),
		attribute.StringSlice("host.names", []string{"a", "b"}))
	scopes := []instrumentation.Scope{
		{Name: "orders/pubsub", Version: "1.2.3", SchemaURL: "https://example.com/s", Attributes: attribute.NewSet(attribute.Bool("scope.flag", true))},
		{Name: "spanreturn"},
	}
	ts, _ := trace.ParseTraceState("vendor=abc,other=x1")
	base := time.Date(2026, 3, 29, 1, 30, 0, 123456789, time.UTC)
	var out tracetest.SpanStubs
	var prev trace.SpanContext
	for i := range n {
		var tid trace.TraceID
		var sid, pid trace.SpanID
		id(tid[:])
		id(sid[:])
		id(pid[:])
		s := tracetest.SpanStub{
			Name:        fmt.Sprintf("span %d", i),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
			SpanKind:    trace.SpanKind(1 + i%5),
			StartTime:   base.Add(time.Duration(i) * time.Millisecond),
			EndTime:     base.Add(time.Duration(i)*time.Millisecond + time.Duration(r.IntN(1e6))),
			Attributes: []attribute.KeyValue{
				attribute.String("messaging.operation.name", "notify"),
				attribute.Int("messaging.message.body.size", r.IntN(1<<20)),
				attribute.Float64("f", r.Float64()),
				attribute.Bool("b", i%2 == 0),
				attribute.Int64Slice("ints", []int64{int64(i), -1}),
				attribute.StringSlice("strs", []string{"x", fmt.Sprint(i)}),
			},
			Resource:             orders,
			InstrumentationScope: scopes[0],
		}
		if i%3 == 0 {
			s.SpanContext = s.SpanContext.WithTraceState(ts)
			s.Parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: pid, TraceFlags: trace.FlagsSampled, Remote: i%2 == 0})
			s.Resource, s.InstrumentationScope = broadcaster, scopes[1]
		}
		if i%4 == 0 {
			s.Status = sdktrace.Status{Code: codes.Error, Description: "broken " + fmt.Sprint(i)}
		} else if i%4 == 1 {
			s.Status = sdktrace.Status{Code: codes.Ok}
		}
		for e := range i % 3 {
			s.Events = append(s.Events, sdktrace.Event{
				Name: fmt.Sprintf("event %d", e), Time: s.StartTime.Add(time.Duration(e) * time.Microsecond),
				Attributes: []attribute.KeyValue{attribute.Int("e", e)}, DroppedAttributeCount: e,
			})
		}
		if prev.IsValid() && i%5 == 0 {
			s.Links = []sdktrace.Link{{SpanContext: prev.WithTraceState(ts), Attributes: []attribute.KeyValue{attribute.String("why", "retry of")}, DroppedAttributeCount: 1}}
		}
		s.DroppedAttributes, s.DroppedEvents, s.DroppedLinks = i%7, i%11, i%13
		prev = s.SpanContext
		out = append(out, s)
	}
	return out
}

// mustFile writes spans into a new trace file in dir.
func mustFile(tb testing.TB, dir, name string, spans tracetest.SpanStubs) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	exp, err := exporter.New(path)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	snaps := spans.Snapshots()
	for len(snaps) > 0 {
		n := min(len(snaps), 100)
		if err := exp.ExportSpans(ctx, snaps[:n]); err != nil {
			tb.Fatal(err)
		}
		snaps = snaps[n:]
	}
	if err := exp.Shutdown(ctx); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestReplay_FlakyCollector(t *testing.T) {
	want := stubs(1000)
	dir := t.TempDir()
	// The second file repeats 200 spans of the first, as a broadcaster's
	// file repeats the spans that rode home.
	a := mustFile(t, dir, "a.db", want[:800])
	b := mustFile(t, dir, "b.db", want[600:])
	c := newCollector(t, true)

	var reports []replay.Progress
	res, err := replay.Replay(context.Background(), c.srv.URL, []string{a, b},
		replay.WithBatchSize(100), replay.WithBackoff(time.Millisecond, 5*time.Millisecond),
		replay.WithProgress(func(p replay.Progress) { reports = append(reports, p) }))
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if res.Spans != int64(len(want)) || res.Duplicates != 200 || res.Files != 2 {
		t.Errorf("result = %+v; want 1000 spans, 200 duplicates, 2 files", res)
	}
	if c.refused == 0 || res.Retries != c.refused || res.Requests != c.requests-c.refused {
		t.Errorf("retries = %d, requests = %d; collector refused %d of %d", res.Retries, res.Requests, c.refused, c.requests)
	}
	if len(c.spans) != len(want) || c.duplicate != 0 {
		t.Errorf("collector holds %d spans (%d sent twice); want %d once each", len(c.spans), c.duplicate, len(want))
	}
	var retried, last int64
	for _, p := range reports {
		if p.Retry > 0 {
			retried++
			if p.LastError == nil || !strings.Contains(p.LastError.Error(), "try again") {
				t.Errorf("retry report error = %v; want the collector's answer", p.LastError)
			}
			continue
		}
		if p.Sent < last {
			t.Errorf("progress went back from %d to %d", last, p.Sent)
		}
		last = p.Sent
	}
	if retried != int64(res.Retries) || last != res.Spans {
		t.Errorf("progress reported %d retries and %d sent; want %d and %d", retried, last, res.Retries, res.Spans)
	}

	for _, s := range want {
		got, ok := c.spans[s.SpanContext.SpanID().String()]
		if !ok {
			t.Errorf("span %s (%q) never arrived", s.SpanContext.SpanID(), s.Name)
			continue
		}
		if diff := compare(s, got); diff != "" {
			t.Errorf("span %q: %s", s.Name, diff)
		}
	}
}

// compare checks a received span against the one written, field by field,
// with its own reading of OTLP.
func compare(w tracetest.SpanStub, g received) string {
	var d []string
	check := func(what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			d = append(d, fmt.Sprintf("%s = %v; want %v", what, got, want))
		}
	}
	s := g.span
	check("trace id", hex.EncodeToString(s.TraceId), w.SpanContext.TraceID().String())
	check("name", s.Name, w.Name)
	check("kind", int(s.Kind), int(w.SpanKind))
	check("start", s.StartTimeUnixNano, w.StartTime.UnixNano())
	check("end", s.EndTimeUnixNano, w.EndTime.UnixNano())
	check("trace state", s.TraceState, w.SpanContext.TraceState().String())
	wantParent := ""
	if w.Parent.IsValid() {
		wantParent = w.Parent.SpanID().String()
	}
	check("parent", hex.EncodeToString(s.ParentSpanId), wantParent)
	check("parent remote", s.Flags&uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK) != 0, w.Parent.IsRemote())
	check("sampled", s.Flags&1, 1)
	check("attributes", kvs(s.Attributes), attrs(w.Attributes))
	check("dropped", []uint32{s.DroppedAttributesCount, s.DroppedEventsCount, s.DroppedLinksCount},
		[]int{w.DroppedAttributes, w.DroppedEvents, w.DroppedLinks})
	wantCode := map[codes.Code]tracepb.Status_StatusCode{codes.Unset: 0, codes.Ok: 1, codes.Error: 2}[w.Status.Code]
	check("status", []any{s.Status.GetCode(), s.Status.GetMessage()}, []any{wantCode, w.Status.Description})
	check("events", len(s.Events), len(w.Events))
	for i := range min(len(s.Events), len(w.Events)) {
		check("event name", s.Events[i].Name, w.Events[i].Name)
		check("event time", s.Events[i].TimeUnixNano, w.Events[i].Time.UnixNano())
		check("event attributes", kvs(s.Events[i].Attributes), attrs(w.Events[i].Attributes))
		check("event dropped", s.Events[i].DroppedAttributesCount, w.Events[i].DroppedAttributeCount)
	}
	check("links", len(s.Links), len(w.Links))
	for i := range min(len(s.Links), len(w.Links)) {
		check("link span", hex.EncodeToString(s.Links[i].SpanId), w.Links[i].SpanContext.SpanID().String())
		check("link trace", hex.EncodeToString(s.Links[i].TraceId), w.Links[i].SpanContext.TraceID().String())
		check("link trace state", s.Links[i].TraceState, w.Links[i].SpanContext.TraceState().String())
		check("link remote", s.Links[i].Flags&uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK) != 0, w.Links[i].SpanContext.IsRemote())
		check("link attributes", kvs(s.Links[i].Attributes), attrs(w.Links[i].Attributes))
		check("link dropped", s.Links[i].DroppedAttributesCount, w.Links[i].DroppedAttributeCount)
	}
	check("resource", kvs(g.resource.Resource.Attributes), attrs(w.Resource.Attributes()))
	check("resource schema", g.resource.SchemaUrl, w.Resource.SchemaURL())
	sc := w.InstrumentationScope
	check("scope", []string{g.scope.Scope.Name, g.scope.Scope.Version, g.scope.SchemaUrl}, []string{sc.Name, sc.Version, sc.SchemaURL})
	check("scope attributes", kvs(g.scope.Scope.Attributes), attrs(sc.Attributes.ToSlice()))
	return strings.Join(d, "; ")
}

// kvs and attrs render OTLP and OpenTelemetry attributes the same way,
// sorted by key.
func kvs(in []*commonpb.KeyValue) string {
	var out []string
	for _, kv := range in {
		out = append(out, kv.Key+"="+anyValue(kv.Value))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return "s:" + x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprintf("i:%d", x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprintf("f:%v", x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprintf("b:%v", x.BoolValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.Values {
			parts = append(parts, anyValue(e))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("?%T", v.Value)
}

func attrs(in []attribute.KeyValue) string {
	var out []string
	for _, kv := range in {
		var v string
		switch kv.Value.Type() {
		case attribute.STRING:
			v = "s:" + kv.Value.AsString()
		case attribute.INT64:
			v = fmt.Sprintf("i:%d", kv.Value.AsInt64())
		case attribute.FLOAT64:
			v = fmt.Sprintf("f:%v", kv.Value.AsFloat64())
		case attribute.BOOL:
			v = fmt.Sprintf("b:%v", kv.Value.AsBool())
		case attribute.INT64SLICE:
			var p []string
			for _, x := range kv.Value.AsInt64Slice() {
				p = append(p, fmt.Sprintf("i:%d", x))
			}
			v = "[" + strings.Join(p, " ") + "]"
		case attribute.STRINGSLICE:
			v = "[s:" + strings.Join(kv.Value.AsStringSlice(), " s:") + "]"
		default:
			v = "?" + kv.Value.Type().String()
		}
		out = append(out, string(kv.Key)+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestReplay_GivesUp(t *testing.T) {
	dir := t.TempDir()
	path := mustFile(t, dir, "a.db", stubs(10))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	res, err := replay.Replay(context.Background(), srv.URL, []string{path},
		replay.WithAttempts(3), replay.WithBackoff(time.Millisecond, time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Errorf("error = %v; want giving up after 3 attempts", err)
	}
	if res.Spans != 0 || res.Retries != 2 {
		t.Errorf("result = %+v; want 0 spans and 2 retries", res)
	}
}

func TestReplay_Errors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, endpoint string
		files          []string
		want           string
	}{
		{"NoScheme", "127.0.0.1:4318", nil, "want a URL"},
		{"MissingFile", "http://127.0.0.1:1", []string{filepath.Join(dir, "nope.db")}, "nope.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := replay.Replay(context.Background(), tc.endpoint, tc.files, replay.WithAttempts(1))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v; want one mentioning %q", err, tc.want)
			}
		})
	}
}

func ExampleReplay() {
	dir, _ := os.MkdirTemp("", "replay-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "orders.db")
	exp, _ := exporter.New(path)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	_, span := tp.Tracer("example").Start(context.Background(), "notify")
	span.End()
	_ = tp.Shutdown(context.Background())

	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		_ = proto.Unmarshal(data, &req)
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					got = append(got, s.Name)
				}
			}
		}
	}))
	defer srv.Close()

	res, err := replay.Replay(context.Background(), srv.URL, []string{path})
	fmt.Println(res.Spans, err, slices.Sorted(slices.Values(got)))
	// Output: 1 <nil> [notify]
}
