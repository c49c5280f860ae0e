package viewer_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// opSpec is one operation span to generate, with its phases.
type opSpec struct {
	op                       string
	name                     string
	start                    time.Time
	dur                      time.Duration
	topic, glob, broadcaster string
	size, subs               int64 // -1: absent
	stateful                 int8  // -1: absent
	phases                   []phaseSpec
	// failed sets the span's status to Error, service its resource's
	// service.name (recordAs).
	failed  bool
	service string
}

// phaseSpec is a descendant of an operation's span, offset from the
// operation's start.
type phaseSpec struct {
	name     string
	off, dur time.Duration
	kids     []phaseSpec
	failed   bool
}

func newOp(op string, start time.Time, dur time.Duration) opSpec {
	return opSpec{op: op, name: op, start: start, dur: dur, size: -1, subs: -1, stateful: -1}
}

// collector keeps the spans the real SDK ends, so that tests can hand the
// same snapshots to one or more real exporters.
type collector struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (c *collector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c *collector) OnEnd(s sdktrace.ReadOnlySpan) {
	c.mu.Lock()
	c.spans = append(c.spans, s)
	c.mu.Unlock()
}
func (c *collector) Shutdown(context.Context) error   { return nil }
func (c *collector) ForceFlush(context.Context) error { return nil }

func (c *collector) take() []sdktrace.ReadOnlySpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.spans
	c.spans = nil
	return s
}

// recorder makes spans with the real SDK.
type recorder struct {
	c      *collector
	tracer trace.Tracer
	// services holds a tracer per service.name, for opSpec.service.
	services map[string]trace.Tracer
}

func newRecorder() *recorder {
	c := &collector{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	return &recorder{c: c, tracer: tp.Tracer("viewer_test"), services: map[string]trace.Tracer{}}
}

// tracerOf returns the tracer of service, the default one for "".
func (r *recorder) tracerOf(service string) trace.Tracer {
	if service == "" {
		return r.tracer
	}
	t, ok := r.services[service]
	if !ok {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.c), sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
		t = tp.Tracer("viewer_test")
		r.services[service] = t
	}
	return t
}

// record makes the spans of o under parent (a fresh trace when parent has
// no span) and returns the operation span's context.
func (r *recorder) record(parent context.Context, o opSpec) trace.SpanContext {
	attrs := []attribute.KeyValue{}
	if o.op != "" {
		attrs = append(attrs, schema.Operation(o.op))
	}
	if o.topic != "" {
		attrs = append(attrs, schema.Topic(o.topic))
	}
	if o.glob != "" {
		attrs = append(attrs, schema.Glob(o.glob))
	}
	if o.broadcaster != "" {
		attrs = append(attrs, schema.Broadcaster(o.broadcaster))
	}
	if o.size >= 0 {
		attrs = append(attrs, schema.BodySizeKey.Int64(o.size))
	}
	if o.subs >= 0 {
		attrs = append(attrs, schema.SubscribersKey.Int64(o.subs))
	}
	if o.stateful >= 0 {
		attrs = append(attrs, schema.Stateful(o.stateful == 1))
	}
	tracer := r.tracerOf(o.service)
	ctx, span := tracer.Start(parent, o.name, trace.WithTimestamp(o.start), trace.WithAttributes(attrs...))
	r.phases(tracer, ctx, o.start, o.phases)
	if o.failed {
		span.SetStatus(codes.Error, "failed")
	}
	span.End(trace.WithTimestamp(o.start.Add(o.dur)))
	return span.SpanContext()
}

func (r *recorder) phases(tracer trace.Tracer, ctx context.Context, opStart time.Time, ps []phaseSpec) {
	for _, p := range ps {
		c, s := tracer.Start(ctx, p.name, trace.WithTimestamp(opStart.Add(p.off)))
		r.phases(tracer, c, opStart, p.kids)
		if p.failed {
			s.SetStatus(codes.Error, "phase failed")
		}
		s.End(trace.WithTimestamp(opStart.Add(p.off + p.dur)))
	}
}

// writeSpans stores spans in the trace file at path with the real
// exporter, creating it if needed.
func writeSpans(tb testing.TB, path string, spans []sdktrace.ReadOnlySpan) {
	tb.Helper()
	e, err := exporter.New(path)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < len(spans); i += 512 {
		if err := e.ExportSpans(ctx, spans[i:min(i+512, len(spans))]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := e.Shutdown(ctx); err != nil {
		tb.Fatal(err)
	}
	if st := e.Stats(); st.Written != int64(len(spans)) {
		tb.Fatalf("written = %d; want %d", st.Written, len(spans))
	}
}

// writeOps records ops into a new file in dir and returns its path.
func writeOps(tb testing.TB, dir, name string, ops []opSpec) string {
	tb.Helper()
	r := newRecorder()
	for _, o := range ops {
		r.record(context.Background(), o)
	}
	path := filepath.Join(dir, name)
	writeSpans(tb, path, r.c.take())
	return path
}

// server serves v on a real loopback listener, mounted at /stats.
func server(tb testing.TB, v *viewer.Viewer) string {
	tb.Helper()
	e := echo.New()
	v.Register(e.Group("/stats"))
	srv := httptest.NewServer(e)
	tb.Cleanup(srv.Close)
	return srv.URL + "/stats"
}

// mustOpen opens paths with the clock fixed at now, in zone UTC.
func mustOpen(tb testing.TB, now time.Time, paths ...string) *viewer.Viewer {
	tb.Helper()
	v, err := viewer.Open(paths...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	viewer.SetClock(v, func() time.Time { return now })
	viewer.SetLocation(v, time.UTC)
	return v
}

// get fetches base+path with params and returns status and body.
func get(tb testing.TB, base, path string, params url.Values) (int, []byte) {
	tb.Helper()
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// getJSON fetches path with params from base, wants a 200, and decodes
// the answer as a T.
func getJSON[T any](tb testing.TB, base, path string, params url.Values) *T {
	tb.Helper()
	code, body := get(tb, base, path, params)
	if code != http.StatusOK {
		tb.Fatalf("GET %s?%s: status %d: %s", path, params.Encode(), code, body)
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("decode %s: %v\n%s", path, err, body)
	}
	return &v
}

// summary fetches /api/summary and decodes it.
func summary(tb testing.TB, base string, params url.Values) *model.Summary {
	tb.Helper()
	return getJSON[model.Summary](tb, base, "/api/summary", params)
}

func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// writeSpansAppend is writeSpans for a file that may already hold spans.
func writeSpansAppend(tb testing.TB, path string, spans []sdktrace.ReadOnlySpan) {
	tb.Helper()
	writeSpans(tb, path, spans)
}
