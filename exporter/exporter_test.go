package exporter_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

func mustNew(tb testing.TB, path string, opts ...exporter.Option) *exporter.Exporter {
	tb.Helper()
	e, err := exporter.New(path, opts...)
	if err != nil {
		tb.Fatalf("New(%q): %v", path, err)
	}
	tb.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

func readAll(tb testing.TB, path string) []schema.Span {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatalf("OpenRead: %v", err)
	}
	defer db.Close()
	spans, err := schema.NewReader(db).After(context.Background(), 0, 1<<30)
	if err != nil {
		tb.Fatalf("read spans: %v", err)
	}
	return spans
}

func TestExporter_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.db")
	exp := mustNew(t, path)
	mem := tracetest.NewInMemoryExporter()
	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "roundtrip"), attribute.Int("replica", 3))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSyncer(mem),
		sdktrace.WithBatcher(exp),
	)
	tracer := tp.Tracer("lonelytrace/test", trace.WithInstrumentationVersion("1.2.3"),
		trace.WithSchemaURL("https://example.com/schema"),
		trace.WithInstrumentationAttributes(attribute.Bool("scoped", true)))

	remoteParent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{9, 8, 7, 6, 5, 4, 3, 2},
		TraceFlags: trace.FlagsSampled,
		TraceState: mustTraceState(t, "vendor=abc,other=x"),
		Remote:     true,
	})
	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xaa, 15: 1}, SpanID: trace.SpanID{0xbb, 1}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	start := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	everyType := []attribute.KeyValue{
		attribute.Bool("b", true), attribute.Int64("i", -42), attribute.Int64("big", math.MaxInt64),
		attribute.Float64("f", 1.0), attribute.Float64("pi", 3.14159), attribute.Float64("nan", math.NaN()),
		attribute.Float64("inf", math.Inf(-1)), attribute.String("s", "quote\" slash\\ <script>é\x00\n"),
		attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, -2, 3}),
		attribute.Float64Slice("fs", []float64{1, 2.5, math.Inf(1)}), attribute.StringSlice("ss", []string{"a", ""}),
		attribute.StringSlice("empty", []string{}), attribute.Int64Slice("emptyints", []int64{}),
		schema.Operation(schema.OpNotify), schema.Topic("orders/eu"), schema.BodySize(512),
		schema.Broadcaster("b1:3003"), schema.Subscribers(4), schema.Stateful(true),
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remoteParent)
	ctx, parent := tracer.Start(ctx, "notify", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithTimestamp(start), trace.WithAttributes(everyType...),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("why", "batch")}}))
	parent.AddEvent("hashed", trace.WithTimestamp(start.Add(time.Millisecond)),
		trace.WithAttributes(attribute.Int("n", 1), attribute.String("k", "v")))
	parent.AddEvent("bare", trace.WithTimestamp(start.Add(2*time.Millisecond)))
	_, child := tracer.Start(ctx, "send request", trace.WithTimestamp(start.Add(3*time.Millisecond)),
		trace.WithSpanKind(trace.SpanKindClient))
	child.SetStatus(codes.Error, "connection refused")
	child.End(trace.WithTimestamp(start.Add(5 * time.Millisecond)))
	parent.SetStatus(codes.Ok, "")
	parent.End(trace.WithTimestamp(start.Add(9 * time.Millisecond)))
	_, glob := tracer.Start(context.Background(), "subscribe", trace.WithTimestamp(start),
		trace.WithAttributes(schema.Operation(schema.OpSubscribeGlob), schema.Glob("orders/*"),
			attribute.String("server.address", "10.0.0.1"), attribute.Int("server.port", 3003)))
	glob.End(trace.WithTimestamp(start.Add(time.Millisecond)))

	want := mem.GetSpans() // before Shutdown, which empties it
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("provider shutdown: %v", err)
	}
	got := readAll(t, path)
	if len(got) != len(want) {
		t.Fatalf("read %d spans; want %d", len(got), len(want))
	}
	byID := map[trace.SpanID]schema.Span{}
	for _, s := range got {
		byID[s.SpanID] = s
	}
	for _, w := range want {
		g, ok := byID[w.SpanContext.SpanID()]
		if !ok {
			t.Fatalf("span %s (%q) missing", w.SpanContext.SpanID(), w.Name)
		}
		t.Run(w.Name, func(t *testing.T) { compareSpan(t, g, w) })
	}

	notify := byID[parent.SpanContext().SpanID()]
	wantPS := schema.PubSub{Op: "notify", Topic: "orders/eu", Broadcaster: "b1:3003", BodySize: 512, Subscribers: 4, Stateful: 1}
	if notify.PubSub != wantPS {
		t.Errorf("notify pub/sub = %+v; want %+v", notify.PubSub, wantPS)
	}
	sub := byID[glob.SpanContext().SpanID()]
	wantPS = schema.PubSub{Op: "subscribe_glob", Glob: "orders/*", Broadcaster: "10.0.0.1:3003", BodySize: -1, Subscribers: -1, Stateful: -1}
	if sub.PubSub != wantPS {
		t.Errorf("subscribe pub/sub = %+v; want %+v", sub.PubSub, wantPS)
	}

	// The file is a public interface: the shell's view must show the same.
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var viewAttrs, service, kind, status string
	if err := db.QueryRow(`SELECT attributes, service_name, kind, status FROM spans_view WHERE name = 'notify'`).Scan(&viewAttrs, &service, &kind, &status); err != nil {
		t.Fatalf("spans_view: %v", err)
	}
	for _, frag := range []string{`"b":true`, `"big":9223372036854775807`, `"f":1.0`, `"is":[1,-2,3]`, `"messaging.destination.name":"orders/eu"`} {
		if !strings.Contains(viewAttrs, frag) {
			t.Errorf("spans_view attributes %s lack %s", viewAttrs, frag)
		}
	}
	if service != "roundtrip" || kind != "producer" || status != "ok" {
		t.Errorf("spans_view service, kind, status = %q, %q, %q; want roundtrip, producer, ok", service, kind, status)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM span_attributes WHERE key = 'lonelytrace.subscribers' AND value = 4`).Scan(&n); err != nil || n != 1 {
		t.Errorf("span_attributes subscribers rows = %d, %v; want 1", n, err)
	}
}

func compareSpan(t *testing.T, g schema.Span, w tracetest.SpanStub) {
	t.Helper()
	check := func(field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v; want %#v", field, got, want)
		}
	}
	check("TraceID", g.TraceID, w.SpanContext.TraceID())
	check("ParentSpanID", g.ParentSpanID, w.Parent.SpanID())
	check("ParentRemote", g.ParentRemote, w.Parent.IsRemote())
	check("Flags", g.Flags, w.SpanContext.TraceFlags())
	check("TraceState", g.TraceState, w.SpanContext.TraceState().String())
	check("Kind", g.Kind, w.SpanKind)
	check("Start", g.Start.UnixNano(), w.StartTime.UnixNano())
	check("End", g.End.UnixNano(), w.EndTime.UnixNano())
	check("StatusCode", g.StatusCode, w.Status.Code)
	check("StatusMsg", g.StatusMsg, w.Status.Description)
	check("Attributes", attrString(g.Attributes), attrString(w.Attributes))
	check("DroppedAttributes", g.DroppedAttributes, w.DroppedAttributes)
	check("DroppedEvents", g.DroppedEvents, w.DroppedEvents)
	check("DroppedLinks", g.DroppedLinks, w.DroppedLinks)
	check("ChildCount", g.ChildCount, w.ChildSpanCount)
	check("events", len(g.Events), len(w.Events))
	for i := range min(len(g.Events), len(w.Events)) {
		check(fmt.Sprintf("Events[%d].Name", i), g.Events[i].Name, w.Events[i].Name)
		check(fmt.Sprintf("Events[%d].Time", i), g.Events[i].Time.UnixNano(), w.Events[i].Time.UnixNano())
		check(fmt.Sprintf("Events[%d].Attributes", i), attrString(g.Events[i].Attributes), attrString(w.Events[i].Attributes))
	}
	check("links", len(g.Links), len(w.Links))
	for i := range min(len(g.Links), len(w.Links)) {
		wl := w.Links[i]
		check(fmt.Sprintf("Links[%d].TraceID", i), g.Links[i].TraceID, wl.SpanContext.TraceID())
		check(fmt.Sprintf("Links[%d].SpanID", i), g.Links[i].SpanID, wl.SpanContext.SpanID())
		check(fmt.Sprintf("Links[%d].Remote", i), g.Links[i].Remote, wl.SpanContext.IsRemote())
		check(fmt.Sprintf("Links[%d].Flags", i), g.Links[i].Flags, wl.SpanContext.TraceFlags())
		check(fmt.Sprintf("Links[%d].Attributes", i), attrString(g.Links[i].Attributes), attrString(wl.Attributes))
	}
	check("Resource.SchemaURL", g.Resource.SchemaURL, w.Resource.SchemaURL())
	check("Resource.Attributes", attrString(g.Resource.Attributes), attrString(w.Resource.Attributes()))
	check("Scope", scopeString(g.Scope), scopeString(schema.Scope{
		Name: w.InstrumentationScope.Name, Version: w.InstrumentationScope.Version,
		SchemaURL: w.InstrumentationScope.SchemaURL, Attributes: w.InstrumentationScope.Attributes.ToSlice(),
	}))
}

// attrString renders attributes with their types, so that an int read back
// as a float, or NaN lost, is a difference.
func attrString(kvs []attribute.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = fmt.Sprintf("%s:%s=%s", kv.Key, kv.Value.Type(), kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func scopeString(s schema.Scope) string {
	return s.Name + "|" + s.Version + "|" + s.SchemaURL + "|" + attrString(s.Attributes)
}

func mustTraceState(t *testing.T, s string) trace.TraceState {
	t.Helper()
	ts, err := trace.ParseTraceState(s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// spans returns n ended spans from a throwaway provider, for feeding
// ExportSpans directly.
func spans(n int) []sdktrace.ReadOnlySpan {
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem))
	tr := tp.Tracer("gen")
	for i := range n {
		_, s := tr.Start(context.Background(), fmt.Sprintf("span-%d", i), trace.WithAttributes(attribute.Int("i", i)))
		s.End()
	}
	return mem.GetSpans().Snapshots()
}

func metaValue(tb testing.TB, path, key string) int64 {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT coalesce((SELECT value FROM meta WHERE key = ?), 0)", key).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestExporter_ForceFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path)
	ctx := context.Background()
	total := 0
	for round := 1; round <= 3; round++ {
		batch := spans(100 * round)
		if err := e.ExportSpans(ctx, batch); err != nil {
			t.Fatalf("ExportSpans: %v", err)
		}
		total += len(batch)
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatalf("ForceFlush: %v", err)
		}
		// Readable from another connection right away: committed, not queued.
		if n := otlptest.StoredSpans(t, path); n != total {
			t.Fatalf("round %d: rows = %d; want %d", round, n, total)
		}
	}
	if s := e.Stats(); s.Written != int64(total) || s.Batches != 3 || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("Stats = %+v; want Written %d, Batches 3, no drops or failures", s, total)
	}
	t.Run("ExpiredContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := e.ForceFlush(cctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("ForceFlush(cancelled) = %v; want nil or context.Canceled", err)
		}
	})
}

func TestExporter_Shutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Queued, never flushed: Shutdown must drain it.
	for range 10 {
		if err := e.ExportSpans(ctx, spans(50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v; want nil", err)
	}
	if err := e.ExportSpans(ctx, spans(1)); !errors.Is(err, exporter.ErrShutdown) {
		t.Errorf("ExportSpans after Shutdown = %v; want ErrShutdown", err)
	}
	if err := e.ForceFlush(ctx); !errors.Is(err, exporter.ErrShutdown) {
		t.Errorf("ForceFlush after Shutdown = %v; want ErrShutdown", err)
	}
	if n := otlptest.StoredSpans(t, path); n != 500 {
		t.Errorf("rows = %d; want 500", n)
	}
	// Checkpointed: the WAL is empty, the main file holds everything.
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL size after Shutdown = %d; want 0", fi.Size())
	}
	// Reopening appends to the same file.
	e2 := mustNew(t, path)
	if err := e2.ExportSpans(ctx, spans(5)); err != nil {
		t.Fatal(err)
	}
	if err := e2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := otlptest.StoredSpans(t, path); n != 505 {
		t.Errorf("rows after reopen = %d; want 505", n)
	}
}

// TestExporter_ShutdownHonoursContext stalls the writer behind another
// connection's write lock, fills the queue, and leaves an ExportSpans
// without a deadline waiting for room: Shutdown must still return when its
// context ends, and with the context's error; the waiting ExportSpans must
// return too. Once the lock is released, a second Shutdown finishes the
// job: everything queued is written and every span is accounted for.
func TestExporter_ShutdownHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithQueueSize(2), exporter.WithBusyTimeout(30*time.Second))
	ctx := context.Background()
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	hold, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if _, err := hold.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var releaseOnce sync.Once
	release := func() {
		releaseOnce.Do(func() {
			if _, err := hold.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Errorf("release the write lock: %v", err)
			}
		})
	}
	t.Cleanup(release) // before mustNew's Shutdown, should the test stop early

	// One producer exports until a call stays blocked on the full queue.
	var started, returned, accepted atomic.Int64
	stop := make(chan struct{})
	exported := make(chan struct{})
	go func() {
		defer close(exported)
		for {
			select {
			case <-stop:
				return
			default:
			}
			started.Add(1)
			err := e.ExportSpans(context.Background(), spans(10))
			returned.Add(1)
			if errors.Is(err, exporter.ErrShutdown) {
				return
			}
			if err != nil {
				t.Errorf("ExportSpans = %v", err)
				return
			}
			accepted.Add(10)
		}
	}()
	blockedSince := time.Now()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if started.Load() != returned.Load()+1 {
			blockedSince = time.Now()
		} else if time.Since(blockedSince) > 300*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ExportSpans never blocked on a full queue")
		}
		time.Sleep(10 * time.Millisecond)
	}

	close(stop)
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	result := make(chan error, 1)
	go func() { result <- e.Shutdown(sctx) }()
	select {
	case err := <-result:
		if took := time.Since(began); took > time.Second {
			t.Errorf("Shutdown took %v; want under a second", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v; want context.DeadlineExceeded", err)
		}
	case <-time.After(time.Second):
		t.Error("Shutdown with a 200 ms context still waits after a second")
		release()
		<-result
	}
	select {
	case <-exported:
	case <-time.After(time.Second):
		t.Error("the blocked ExportSpans still waits a second after Shutdown began")
		release()
		<-exported
	}

	// The stalled writer finishes once the lock is gone.
	release()
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	if err := e.Shutdown(fctx); err != nil {
		t.Fatalf("Shutdown after the lock is released = %v; want nil", err)
	}
	s := e.Stats()
	if s.Written+s.Dropped != accepted.Load() || s.Failed != 0 {
		t.Errorf("Stats = %+v; want Written + Dropped = %d spans accepted, none failed", s, accepted.Load())
	}
	if n := otlptest.StoredSpans(t, path); int64(n) != s.Written {
		t.Errorf("rows = %d; want Written %d", n, s.Written)
	}
	if d := metaValue(t, path, "dropped_spans"); d != s.Dropped {
		t.Errorf("meta dropped_spans = %d; want Dropped %d", d, s.Dropped)
	}
}

func TestExporter_ConcurrentProducers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithQueueSize(4))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(e, sdktrace.WithMaxExportBatchSize(64), sdktrace.WithMaxQueueSize(1<<16)))
	const producers, each = 8, 500
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := tp.Tracer(fmt.Sprintf("producer-%d", p))
			for i := range each {
				ctx, root := tr.Start(context.Background(), "root", trace.WithAttributes(attribute.Int("i", i), schema.Operation(schema.OpNotify)))
				_, c := tr.Start(ctx, "child")
				c.End()
				root.End()
			}
		}()
	}
	wg.Wait()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := producers * each * 2
	if n := otlptest.StoredSpans(t, path); n != want {
		t.Errorf("rows = %d; want %d", n, want)
	}
	// Every child found its trace: as many traces as roots.
	db, _ := schema.OpenRead(context.Background(), path)
	defer db.Close()
	var traces, scopes int
	db.QueryRow("SELECT count(*) FROM traces").Scan(&traces)
	db.QueryRow("SELECT count(*) FROM scopes").Scan(&scopes)
	if traces != producers*each || scopes != producers {
		t.Errorf("traces, scopes = %d, %d; want %d, %d", traces, scopes, producers*each, producers)
	}
}

// lockFile holds SQLite's write lock on path from a second connection until
// the returned func is called, stalling the exporter's writer.
func lockFile(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

func TestExporter_FullQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	var handled []error
	var mu sync.Mutex
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); handled = append(handled, err); mu.Unlock() }))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })

	e := mustNew(t, path, exporter.WithQueueSize(1), exporter.WithBusyTimeout(10*time.Second), exporter.WithCommitInterval(0))
	release := lockFile(t, path)
	ctx := context.Background()
	// The writer takes the first batch and blocks on the lock; the second
	// fills the one-place queue.
	if err := e.ExportSpans(ctx, spans(10)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := e.ExportSpans(ctx, spans(10)); err != nil {
		t.Fatal(err)
	}
	const wait = 100 * time.Millisecond
	for range 3 {
		began := time.Now()
		dctx, cancel := context.WithTimeout(ctx, wait)
		err := e.ExportSpans(dctx, spans(7))
		took := time.Since(began)
		cancel()
		if err != nil {
			t.Errorf("ExportSpans on a full queue = %v; want nil (dropped and counted)", err)
		}
		if took < wait || took > wait+2*time.Second {
			t.Errorf("ExportSpans on a full queue took %v; want about %v", took, wait)
		}
	}
	if d := e.Stats().Dropped; d != 21 {
		t.Errorf("Dropped = %d; want 21", d)
	}
	release()
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := otlptest.StoredSpans(t, path); n != 20 {
		t.Errorf("rows = %d; want the 20 queued spans", n)
	}
	if d := metaValue(t, path, "dropped_spans"); d != 21 {
		t.Errorf("meta dropped_spans = %d; want 21", d)
	}
	mu.Lock()
	defer mu.Unlock()
	drops := 0
	for _, err := range handled {
		if strings.Contains(err.Error(), "dropping") {
			drops++
		}
	}
	if drops != 1 {
		t.Errorf("drop reports through otel.Handle = %d; want 1 for the episode (%v)", drops, handled)
	}
}

// TestExporter_QueueBytes fills the queue's bound in bytes with the
// writer held up, far below its bound in batches: a batch that does not
// fit waits for its context and is dropped, one that fits is queued, and
// one larger than the whole bound is queued once the queue is empty.
func TestExporter_QueueBytes(t *testing.T) {
	collectHandled(t)
	ctx := context.Background()
	// What a batch of 40 spans holds in the queue, measured on a writer
	// held up: the bound takes two such batches, not three.
	probePath := filepath.Join(t.TempDir(), "probe.db")
	probe := mustNew(t, probePath, exporter.WithBusyTimeout(10*time.Second))
	if err := probe.ForceFlush(ctx); err != nil { // key ids published: rows encoded ahead
		t.Fatal(err)
	}
	releaseProbe := lockFile(t, probePath)
	if err := probe.ExportSpans(ctx, spans(40)); err != nil {
		t.Fatal(err)
	}
	batch := exporter.QueuedBytes(probe)
	releaseProbe()
	if batch <= 0 {
		t.Fatalf("a queued batch holds %d bytes; want more than 0", batch)
	}
	bound := batch * 5 / 2

	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithQueueSize(1000), exporter.WithQueueBytes(bound), exporter.WithBusyTimeout(10*time.Second))
	if err := e.ForceFlush(ctx); err != nil { // key ids published: rows encoded ahead
		t.Fatal(err)
	}
	release := lockFile(t, path)
	offer := func(n int) time.Duration {
		t.Helper()
		began := time.Now()
		dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := e.ExportSpans(dctx, spans(n)); err != nil {
			t.Fatal(err)
		}
		return time.Since(began)
	}
	// The writer takes the first batch, and waits for the lock holding
	// its bytes; the second fits beside it, the third does not.
	offer(40)
	time.Sleep(50 * time.Millisecond)
	offer(40)
	if took := offer(40); took < 50*time.Millisecond {
		t.Errorf("ExportSpans past the bound in bytes returned after %v; want it to wait for its context (50 ms)", took)
	}
	if s := e.Stats(); s.Dropped != 40 || s.Batches != 2 {
		t.Errorf("Stats = %+v; want 40 dropped, 2 batches queued, far below the 1,000 batches the channel holds", s)
	}
	release()
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	// Larger than the whole bound, into an empty queue: queued.
	offer(200)
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.Written != 280 || s.Dropped != 40 {
		t.Errorf("Stats = %+v; want 280 written, 40 dropped", s)
	}
	if n := otlptest.StoredSpans(t, path); n != 280 {
		t.Errorf("rows = %d; want 280", n)
	}
}

// TestExporter_TransactionTakesBatchesAsTheyCome checks that the writer,
// once its transaction is open (after the first lockGap), adds each batch
// to it when it comes, giving its room in the queue back then, and
// commits them together once: the queue holds only what the writer has
// not reached.
func TestExporter_TransactionTakesBatchesAsTheyCome(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithCommitInterval(time.Hour))
	ctx := context.Background()
	if err := e.ForceFlush(ctx); err != nil { // key ids published: rows encoded ahead
		t.Fatal(err)
	}
	before := e.Stats().Transactions
	for i := range 3 {
		if err := e.ExportSpans(ctx, spans(40)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, nil, fmt.Sprintf("batch %d's room to be given back", i+1), func() bool { return exporter.QueuedBytes(e) == 0 })
	}
	if s := e.Stats(); s.Written != 0 || s.Transactions != before {
		t.Errorf("Stats with the transaction open = %+v; want nothing written or committed yet", s)
	}
	if n := otlptest.StoredSpans(t, path); n != 0 {
		t.Errorf("a reader sees %d rows of an open transaction; want 0", n)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.Written != 120 || s.Transactions != before+1 {
		t.Errorf("Stats after ForceFlush = %+v; want 120 written in one transaction more than %d", s, before)
	}
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var batches, inBatches int64
	if err := db.QueryRow("SELECT count(*), coalesce(sum(spans), 0) FROM batches").Scan(&batches, &inBatches); err != nil {
		t.Fatal(err)
	}
	if batches != 1 || inBatches != 120 {
		t.Errorf("batches rows = %d holding %d spans; want 1 holding the 120", batches, inBatches)
	}
}

func TestExporter_WriteErrorsResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	var handled []error
	var mu sync.Mutex
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); handled = append(handled, err); mu.Unlock() }))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })

	e := mustNew(t, path, exporter.WithRetryBackoff(time.Millisecond))
	ctx := context.Background()
	if err := e.ExportSpans(ctx, spans(10)); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	// A full disk: cap the file at its current size. Each batch is more
	// than the free room left in the file's pages.
	err := exporter.OnWriterConn(ctx, e, func(c *sqlitec.Conn) error {
		return c.Exec("PRAGMA max_page_count = 1")
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := e.ExportSpans(ctx, spans(2000)); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err == nil {
			t.Fatal("ForceFlush on a full disk = nil; want the write error")
		}
	}
	s := e.Stats()
	if s.Failed != 10000 || s.LastError == nil || !strings.Contains(s.LastError.Error(), "full") {
		t.Errorf("Stats on a full disk = %+v; want Failed 10000 and a 'full' error", s)
	}
	err = exporter.OnWriterConn(ctx, e, func(c *sqlitec.Conn) error {
		return c.Exec("PRAGMA max_page_count = 1000000")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(ctx, spans(30)); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush after the disk has room = %v; want nil", err)
	}
	if n := otlptest.StoredSpans(t, path); n != 40 {
		t.Errorf("rows = %d; want 40", n)
	}
	if f := metaValue(t, path, "failed_spans"); f != 10000 {
		t.Errorf("meta failed_spans = %d; want 10000", f)
	}
	mu.Lock()
	defer mu.Unlock()
	var failures, resumed int
	for _, err := range handled {
		switch {
		case strings.Contains(err.Error(), "failed (further"):
			failures++
		case strings.Contains(err.Error(), "works again"):
			resumed++
		}
	}
	if failures != 1 || resumed != 1 {
		t.Errorf("reports = %d failures, %d resumed; want 1 and 1: %v", failures, resumed, handled)
	}
}

func sum(tb testing.TB, path string) [32]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestNew_BadFiles(t *testing.T) {
	dir := t.TempDir()
	t.Run("Garbage", func(t *testing.T) {
		path := filepath.Join(dir, "garbage.db")
		os.WriteFile(path, []byte(strings.Repeat("not a database at all ", 400)), 0o644)
		before := sum(t, path)
		_, err := exporter.New(path)
		if !errors.Is(err, schema.ErrNotSQLite) {
			t.Errorf("New = %v; want ErrNotSQLite", err)
		}
		if sum(t, path) != before {
			t.Error("file changed")
		}
		assertNoSidecars(t, path)
	})
	t.Run("NewerVersion", func(t *testing.T) {
		path := filepath.Join(dir, "newer.db")
		e := mustNew(t, path)
		e.Shutdown(context.Background())
		db, _ := sql.Open("sqlite", path)
		if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
			t.Fatal(err)
		}
		db.Exec("PRAGMA journal_mode = DELETE")
		db.Close()
		before := sum(t, path)
		_, err := exporter.New(path)
		if !errors.Is(err, schema.ErrNewerSchema) || !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), fmt.Sprint(schema.Version)) {
			t.Errorf("New = %v; want ErrNewerSchema naming 99 and %d", err, schema.Version)
		}
		if sum(t, path) != before {
			t.Error("file changed")
		}
	})
	t.Run("OtherApplication", func(t *testing.T) {
		path := filepath.Join(dir, "other.db")
		db, _ := sql.Open("sqlite", path)
		db.Exec("CREATE TABLE people (name TEXT)")
		db.Close()
		before := sum(t, path)
		if _, err := exporter.New(path); !errors.Is(err, schema.ErrNotTraceFile) {
			t.Errorf("New = %v; want ErrNotTraceFile", err)
		}
		if sum(t, path) != before {
			t.Error("file changed")
		}
	})
	t.Run("Corrupt", func(t *testing.T) {
		path := filepath.Join(dir, "corrupt.db")
		e := mustNew(t, path)
		e.Shutdown(context.Background())
		b, _ := os.ReadFile(path)
		// Keep the header, overwrite the schema page and the rest.
		for i := 100; i < len(b); i++ {
			b[i] = byte(i * 7)
		}
		os.WriteFile(path, b, 0o644)
		before := sum(t, path)
		_, err := exporter.New(path)
		if err == nil {
			t.Fatal("New on a corrupt file = nil; want an error")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the file", err)
		}
		if sum(t, path) != before {
			t.Error("file changed")
		}
	})
	t.Run("Directory", func(t *testing.T) {
		path := filepath.Join(dir, "adir")
		os.Mkdir(path, 0o755)
		_, err := exporter.New(path)
		if err == nil || !strings.Contains(err.Error(), "directory") {
			t.Errorf("New = %v; want an error saying it is a directory", err)
		}
	})
	t.Run("ReadOnlyLocation", func(t *testing.T) {
		// /proc takes no new files, whoever we are.
		_, err := exporter.New("/proc/lonelytrace-test.db")
		if err == nil {
			t.Error("New under /proc = nil; want an error")
		}
		if os.Geteuid() == 0 {
			t.Log("running as root: permission bits do not stop root, checked /proc only")
			return
		}
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		if _, err := exporter.New(filepath.Join(ro, "t.db")); err == nil {
			t.Error("New in a read-only folder = nil; want an error")
		}
	})
}

func assertNoSidecars(t *testing.T, path string) {
	t.Helper()
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("%s%s was created", path, suffix)
		}
	}
}

// TestExporter_Batches checks the batches table against the spans table:
// the viewer trusts it to map time windows to span ids.
func TestExporter_Batches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path)
	ctx := context.Background()
	for i := range 5 {
		for range i + 1 {
			if err := e.ExportSpans(ctx, spans(37*(i+1))); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT first_span, last_span, spans, min_start_ns, max_start_ns FROM batches ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	next, batches := int64(1), 0
	for rows.Next() {
		var first, last, n, lo, hi int64
		rows.Scan(&first, &last, &n, &lo, &hi)
		batches++
		if first != next {
			t.Errorf("batch %d starts at span %d; want %d (no gaps, no overlaps)", batches, first, next)
		}
		next = last + 1
		var count, minStart, maxStart int64
		db.QueryRow("SELECT count(*), min(start_ns), max(start_ns) FROM spans WHERE id BETWEEN ? AND ?", first, last).Scan(&count, &minStart, &maxStart)
		if count != n || minStart != lo || maxStart != hi {
			t.Errorf("batch %d says %d spans starting in [%d, %d]; the rows are %d in [%d, %d]", batches, n, lo, hi, count, minStart, maxStart)
		}
	}
	var total int64
	db.QueryRow("SELECT count(*) FROM spans").Scan(&total)
	if next-1 != total || batches == 0 {
		t.Errorf("batches cover spans 1..%d in %d batches; the file has %d spans", next-1, batches, total)
	}
}
