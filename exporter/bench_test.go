package exporter_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
)

// The benchmark workload: traces of one notify and three phases, each span
// started, given four attributes and ended, as an instrumented pub/sub
// client does.
const spansPerTrace = 4

var topics = []string{"orders/eu", "orders/us", "stock/levels", "users/signup"}

func recordSpans(tr trace.Tracer, n int) {
	var ctx context.Context
	var root trace.Span
	for i := 0; i < n; i++ {
		if i%spansPerTrace == 0 {
			if root != nil {
				root.End()
			}
			ctx, root = tr.Start(context.Background(), "notify")
			root.SetAttributes(schema.Operation(schema.OpNotify), schema.Topic(topics[i%len(topics)]),
				schema.BodySize(i%4096), schema.Broadcaster("127.0.0.1:3003"))
			continue
		}
		_, s := tr.Start(ctx, "send request")
		s.SetAttributes(attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 200),
			attribute.String("url.full", "http://127.0.0.1:3003/v1/notify"), attribute.Int("attempt", i%3))
		s.End()
	}
	if root != nil {
		root.End()
	}
}

// quietDrops keeps the exporter's drop reports off the benchmark output:
// the benchmarks report drops as a metric.
func quietDrops(b *testing.B) {
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	b.Cleanup(func() { otel.SetErrorHandler(prev) })
}

// BenchmarkPipeline measures sustained ingest through otelsetup's whole
// pipeline into the file: the clock runs until every span is committed.
func BenchmarkPipeline(b *testing.B) {
	quietDrops(b)
	b.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	path := filepath.Join(b.TempDir(), "pipeline.db")
	var exp *exporter.Exporter
	shutdown, err := otelsetup.Start(context.Background(), otelsetup.WithDBPath(path),
		otelsetup.WithServiceName("bench"), otelsetup.WithSQLiteExporter(func(e *exporter.Exporter) { exp = e }))
	if err != nil {
		b.Fatal(err)
	}
	tr := otel.Tracer("bench")
	b.ResetTimer()
	start := time.Now()
	recordSpans(tr, b.N)
	if err := shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	s := exp.Stats()
	b.ReportMetric(float64(s.Written)/elapsed.Seconds(), "stored-spans/s")
	b.ReportMetric(float64(s.Dropped), "dropped")
	if fi, err := os.Stat(path); err == nil && s.Written > 0 {
		b.ReportMetric(float64(fi.Size())/float64(s.Written), "disk-B/span")
	}
}

// discard is the cheapest possible exporter: the SDK's cost alone.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkAppCost measures what the application pays per span (start, four
// attributes, end) with lonelytrace behind the batch processor, against the
// same processor with an exporter that discards everything.
func BenchmarkAppCost(b *testing.B) {
	quietDrops(b)
	run := func(b *testing.B, e sdktrace.SpanExporter) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(e,
			sdktrace.WithMaxQueueSize(otelsetup.DefaultSQLiteQueueSize),
			sdktrace.WithBatchTimeout(otelsetup.DefaultSQLiteBatchTimeout),
			sdktrace.WithExportTimeout(otelsetup.DefaultSQLiteExportTimeout)))
		defer tp.Shutdown(context.Background())
		// Locked to its thread, the application's CPU time is the
		// thread's: ns/op is its wall time, preemption by the exporter's
		// goroutines included; app-cpu-ns/op what it spends itself.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0, ok := threadCPU()
		recordSpans(tp.Tracer("bench"), b.N)
		cpu1, ok1 := threadCPU()
		b.StopTimer()
		if ok && ok1 {
			b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "app-cpu-ns/op")
		}
	}
	b.Run("exporter=discard", func(b *testing.B) { run(b, discard{}) })
	b.Run("exporter=lonelytrace", func(b *testing.B) {
		e, err := exporter.New(filepath.Join(b.TempDir(), "app.db"))
		if err != nil {
			b.Fatal(err)
		}
		run(b, e)
		b.ReportMetric(float64(e.Stats().Dropped), "dropped")
	})
}

func snapshots(n int) []sdktrace.ReadOnlySpan {
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem))
	recordSpans(tp.Tracer("bench"), n)
	return mem.GetSpans().Snapshots()
}

// later is a recorded span moved to a later round of the benchmark: new
// trace ids and later times, as a live process produces them, so that the
// indexes see what they see in production rather than the same keys again.
type later struct {
	sdktrace.ReadOnlySpan
	round int
	shift time.Duration
}

func (l later) SpanContext() trace.SpanContext {
	sc := l.ReadOnlySpan.SpanContext()
	tid := sc.TraceID()
	tid[0], tid[1], tid[2] = byte(l.round), byte(l.round>>8), byte(l.round>>16)
	return sc.WithTraceID(tid)
}
func (l later) StartTime() time.Time { return l.ReadOnlySpan.StartTime().Add(l.shift) }
func (l later) EndTime() time.Time   { return l.ReadOnlySpan.EndTime().Add(l.shift) }

// rounds returns spans[i%len(spans)] for i in [from, to), moved to their
// round.
func rounds(spans []sdktrace.ReadOnlySpan, from, to int) []sdktrace.ReadOnlySpan {
	span := spans[len(spans)-1].EndTime().Sub(spans[0].StartTime()) + time.Millisecond
	out := make([]sdktrace.ReadOnlySpan, 0, to-from)
	for i := from; i < to; i++ {
		r := i / len(spans)
		out = append(out, later{spans[i%len(spans)], r, time.Duration(r) * span})
	}
	return out
}

// BenchmarkWriter measures the writer alone: ready spans handed over in
// batches of 512 and committed.
func BenchmarkWriter(b *testing.B) {
	spans := snapshots(1 << 14)
	e, err := exporter.New(filepath.Join(b.TempDir(), "writer.db"), exporter.WithQueueSize(1<<12))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	ctx := context.Background()
	batches := make([][]sdktrace.ReadOnlySpan, 0, b.N/512+1)
	for done := 0; done < b.N; done += 512 {
		batches = append(batches, rounds(spans, done, min(done+512, b.N)))
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for _, batch := range batches {
		if err := e.ExportSpans(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.ForceFlush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "spans/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/span")
}

// BenchmarkPlainInsert is the yardstick of the performance targets: the
// same spans as single-row prepared inserts, 512 per transaction, into a
// table of the same columns with no index at all.
func BenchmarkPlainInsert(b *testing.B) {
	spans := snapshots(1 << 14)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "plain.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	cols := []string{"trace_id BLOB", "span_id BLOB", "parent_span_id BLOB", "name TEXT", "kind INTEGER",
		"start_ns INTEGER", "end_ns INTEGER", "status_code INTEGER", "attributes TEXT", "resource INTEGER"}
	if _, err := db.Exec("CREATE TABLE spans (" + strings.Join(cols, ", ") + ")"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	conn, _ := db.Conn(ctx)
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, "INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		b.Fatal(err)
	}
	all := rounds(spans, 0, b.N)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var buf []byte
	for done := 0; done < b.N; {
		conn.ExecContext(ctx, "BEGIN")
		for i := 0; i < 512 && done < b.N; i, done = i+1, done+1 {
			s := all[done]
			tid, sid, pid := s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID()
			buf = schema.AppendAttributes(buf[:0], s.Attributes(), nil)
			if _, err := stmt.ExecContext(ctx, tid[:], sid[:], pid[:], s.Name(), int64(s.SpanKind()),
				s.StartTime().UnixNano(), s.EndTime().UnixNano(), 0, string(buf), 1); err != nil {
				b.Fatal(err)
			}
		}
		conn.ExecContext(ctx, "COMMIT")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "spans/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/span")
}

// cpuTime is the process's user and system CPU time in nanoseconds: on a
// shared machine it moves far less with the neighbours' load than the wall
// clock does.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// threadCPU is the CPU time of the calling thread (Linux's RUSAGE_THREAD,
// which package syscall does not name); ok is false where there is none.
func threadCPU() (ns int64, ok bool) {
	const rusageThread = 1
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}

// BenchmarkDisk writes 100,000 spans and reports the file's bytes per span
// (indexes and all, after the final checkpoint) beside the size of the same
// spans as an OTLP protobuf export request (one resource and scope for the
// lot, as the OTLP exporter sends them).
func BenchmarkDisk(b *testing.B) {
	const n = 100_000
	spans := snapshots(n)
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), fmt.Sprintf("disk%d.db", i))
		e, err := exporter.New(path)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < n; off += 512 {
			e.ExportSpans(context.Background(), spans[off:min(off+512, n)])
		}
		if err := e.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		fi, _ := os.Stat(path)
		b.ReportMetric(float64(fi.Size())/n, "file-B/span")
	}
	b.ReportMetric(float64(otlpSize(spans))/n, "otlp-B/span")
}

func otlpSize(spans []sdktrace.ReadOnlySpan) int {
	kv := func(attrs []attribute.KeyValue) []*commonpb.KeyValue {
		out := make([]*commonpb.KeyValue, len(attrs))
		for i, a := range attrs {
			v := &commonpb.AnyValue{}
			switch a.Value.Type() {
			case attribute.INT64:
				v.Value = &commonpb.AnyValue_IntValue{IntValue: a.Value.AsInt64()}
			default:
				v.Value = &commonpb.AnyValue_StringValue{StringValue: a.Value.String()}
			}
			out[i] = &commonpb.KeyValue{Key: string(a.Key), Value: v}
		}
		return out
	}
	ss := &tracepb.ScopeSpans{}
	for _, s := range spans {
		tid, sid := s.SpanContext().TraceID(), s.SpanContext().SpanID()
		p := &tracepb.Span{TraceId: tid[:], SpanId: sid[:], Name: s.Name(), Kind: tracepb.Span_SpanKind(s.SpanKind()),
			StartTimeUnixNano: uint64(s.StartTime().UnixNano()), EndTimeUnixNano: uint64(s.EndTime().UnixNano()),
			Attributes: kv(s.Attributes()), Flags: uint32(s.SpanContext().TraceFlags()) | 0x100}
		if s.Parent().IsValid() {
			pid := s.Parent().SpanID()
			p.ParentSpanId = pid[:]
		}
		ss.Spans = append(ss.Spans, p)
	}
	req := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: kv(spans[0].Resource().Attributes())}, ScopeSpans: []*tracepb.ScopeSpans{ss}}}}
	return proto.Size(req)
}

// BenchmarkWriterSmallCommits measures what a transaction costs beside
// its rows: jobs of n records queued one at a time, each waited for
// (QueueRecords, Pending.Wait), so that each is its own transaction, as
// collect's are for one client sending one request at a time. Traces
// have spansPerTrace spans, except in one-trace, where each job is one
// trace of 512 spans, the shape of BenchmarkCollect's requests (whose
// writer target measures the same on their spans).
func BenchmarkWriterSmallCommits(b *testing.B) {
	for _, n := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("spans=%d", n), func(b *testing.B) { benchSmallCommits(b, n, spansPerTrace) })
	}
	b.Run("spans=512,one-trace", func(b *testing.B) { benchSmallCommits(b, 512, 512) })
}

func benchSmallCommits(b *testing.B, n, perTrace int) {
	e, err := exporter.New(filepath.Join(b.TempDir(), "small.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	ctx := context.Background()
	base := time.Now()
	attrs := make([][]attribute.KeyValue, len(topics)*3)
	for i := range attrs {
		attrs[i] = []attribute.KeyValue{attribute.String("http.request.method", "POST"),
			attribute.Int("http.response.status_code", 200), schema.Topic(topics[i%len(topics)]), attribute.Int("attempt", i%3)}
	}
	res := schema.Resource{Attributes: []attribute.KeyValue{attribute.String("service.name", "bench")}}
	// Trace ids are random, as an SDK's are: their index takes them
	// anywhere in the current generation's pages, not at its end.
	traceOf := func(t uint64) (id trace.TraceID) {
		binary.LittleEndian.PutUint64(id[:8], (t+1)*0x9e3779b97f4a7c15)
		binary.LittleEndian.PutUint64(id[8:], t+1)
		return id
	}
	// recs is rewritten for each job, with new ids (a span id is unique
	// in the file): the writer is done with a job's records once Wait
	// returns.
	recs := make([]schema.Span, n)
	fill := func(k int) {
		for i := range recs {
			id := uint64(k*n + i)
			at := base.Add(time.Duration(id) * time.Microsecond)
			recs[i] = schema.Span{
				TraceID:    traceOf(id / uint64(perTrace)),
				SpanID:     trace.SpanID{0x5c, byte(id >> 40), byte(id >> 32), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)},
				Name:       "send request",
				Start:      at,
				End:        at.Add(time.Millisecond),
				Attributes: attrs[id%uint64(len(attrs))],
				Resource:   res,
				Scope:      schema.Scope{Name: "bench"},
			}
		}
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for k := 0; k < b.N; k++ {
		fill(k)
		p, err := e.QueueRecords(ctx, recs, true)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := float64(cpuTime() - cpu0)
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "spans/s")
	b.ReportMetric(cpu/float64(b.N), "cpu-ns/job")
	b.ReportMetric(cpu/float64(b.N*n), "cpu-ns/span")
}
