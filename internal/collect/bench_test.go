package collect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/schema"
)

// envJaegerBin names a built Jaeger v2 all-in-one (in examples/collector:
// go build github.com/jaegertracing/jaeger/cmd/jaeger); when set,
// BenchmarkCollect compares with its OTLP/HTTP intake too.
const envJaegerBin = "LONELYTRACE_JAEGER_BIN"

// benchBatch is the spans per request, the SDK batch processor's default.
const benchBatch = 512

// benchSpans returns a batch maker: each call gives benchBatch spans of a
// new trace (notify roots with pub/sub attributes, and their phases), as
// an SDK's batch processor hands them to its exporter: each batch's spans
// start after the last batch's, a microsecond apart. (Until 2026-12-07
// every batch had the same start times, which no program sends: the
// notify roots of every batch then went into the middle of the
// operation index, which cost collect 7 more pages a commit: 23.6 WAL
// frames, now 16.7.)
func benchSpans() func() []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(attribute.String("service.name", "bench"))
	scope := instrumentation.Scope{Name: "bench"}
	stubs := make(tracetest.SpanStubs, benchBatch)
	start := time.Now()
	var n uint64
	return func() []sdktrace.ReadOnlySpan {
		n++
		// Each batch starts where the last ended, as a program's spans do.
		first := start.Add(time.Duration(n*benchBatch) * time.Microsecond)
		tid := trace.TraceID{0xbe, byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 1, 2, 3, 4, 5, 6, 7, 8, 9}
		for i := range stubs {
			sid := trace.SpanID{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, byte(i >> 8), byte(i), 1}
			s := tracetest.SpanStub{
				Name:                 "send request",
				SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
				StartTime:            first.Add(time.Duration(i) * time.Microsecond),
				EndTime:              first.Add(time.Duration(i)*time.Microsecond + 300*time.Microsecond),
				Resource:             res,
				InstrumentationScope: scope,
				Attributes:           []attribute.KeyValue{attribute.Int("attempt", i%3)},
			}
			if i%8 == 0 {
				s.Name = "notify"
				s.SpanKind = trace.SpanKindProducer
				s.Attributes = []attribute.KeyValue{schema.Operation(schema.OpNotify), schema.Topic("orders"), schema.Broadcaster("b1"), schema.BodySize(i * 7), schema.Subscribers(3)}
			} else {
				s.Parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, byte(i &^ 7 >> 8), byte(i &^ 7), 1}})
			}
			stubs[i] = s
		}
		return stubs.Snapshots()
	}
}

// benchRoundBatches is the batches each target stores per round: 65,536
// spans, a multiple of the 8,192 that Jaeger's default batch processor
// sends to its storage at once, so that no span of a round waits for
// that processor's timer.
const benchRoundBatches = 128

// benchTarget is one receiver of BenchmarkCollect with its clients.
type benchTarget struct {
	name string
	// clients is how many senders share a round's batches, each sending
	// its share one batch at a time.
	clients int
	// send stores one batch, given both as spans and as the OTLP/HTTP
	// protobuf request body that otlptracehttp makes of them: the
	// in-process exporter takes the spans, the receivers the body.
	send func(ctx context.Context, spans []sdktrace.ReadOnlySpan, body []byte) error
	// store, when set, takes send's place: it is handed each batch's
	// records, decoded from its body before the clock starts.
	store func(ctx context.Context, rec otlp.Records) error
	// settle returns once total spans in all are stored.
	settle func(total int64) error
	next   func() []sdktrace.ReadOnlySpan
	sent   int64
	// cpu returns the CPU ns spent by the target's processes other than
	// this one (Jaeger's), or is nil.
	cpu func() int64
	// rates are the spans/s stored in each round, cpus the CPU ns per
	// span of this process and the target's others.
	rates, cpus []float64
}

// round sends benchRoundBatches new batches through t's clients at once,
// each client its share in sequence, and returns the spans/s from the
// first send until every span is stored, and the CPU ns per span meanwhile
// of clients and receiver together. The batches are made and encoded
// before the clock starts: the rate is the receiver's, not the span
// generator's nor the client's encoder's.
func (t *benchTarget) round(ctx context.Context, enc *encoder) (rate, cpuPerSpan float64, err error) {
	batches := make([][]sdktrace.ReadOnlySpan, benchRoundBatches)
	bodies := make([][]byte, benchRoundBatches)
	recs := make([]otlp.Records, benchRoundBatches)
	for i := range batches {
		batches[i] = t.next()
		if bodies[i], err = enc.encode(ctx, batches[i]); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", t.name, err)
		}
		if t.store != nil {
			if recs[i], err = otlp.DecodeProto(bodies[i]); err != nil {
				return 0, 0, fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	runtime.GC() // the garbage of the previous target is not this one's cost
	start, cpu0 := time.Now(), t.cpuTime()
	errs := make(chan error, t.clients)
	for c := range t.clients {
		go func() {
			var err error
			for i := c; i < len(batches) && err == nil; i += t.clients {
				if t.store != nil {
					err = t.store(ctx, recs[i])
				} else {
					err = t.send(ctx, batches[i], bodies[i])
				}
			}
			errs <- err
		}()
	}
	for range t.clients {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s: export: %w", t.name, err)
	}
	t.sent += benchRoundBatches * benchBatch
	if err := t.settle(t.sent); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", t.name, err)
	}
	const n = benchRoundBatches * benchBatch
	return n / time.Since(start).Seconds(), float64(t.cpuTime()-cpu0) / n, nil
}

// cpuTime is the CPU ns spent so far by this process and t's others.
func (t *benchTarget) cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ns := ru.Utime.Nano() + ru.Stime.Nano()
	if t.cpu != nil {
		ns += t.cpu()
	}
	return ns
}

// encoder turns a batch into the request body that the Go SDK's
// OTLP/HTTP exporter sends for it, by letting that exporter send it to a
// loopback server that keeps the body: every target then receives the
// same bytes a real client sends, and no target's clock pays for them.
type encoder struct {
	exp  sdktrace.SpanExporter
	body chan []byte
}

func newEncoder(b *testing.B) *encoder {
	e := &encoder{body: make(chan []byte, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.body <- body
	}))
	b.Cleanup(srv.Close)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+TracesPath), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { exp.Shutdown(context.Background()) })
	e.exp = exp
	return e
}

func (e *encoder) encode(ctx context.Context, spans []sdktrace.ReadOnlySpan) ([]byte, error) {
	if err := e.exp.ExportSpans(ctx, spans); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return <-e.body, nil
}

// postTo returns a sender of request bodies to an OTLP/HTTP traces URL, one
// keep-alive client as an SDK exporter holds.
func postTo(url string) func(context.Context, []sdktrace.ReadOnlySpan, []byte) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	return func(ctx context.Context, _ []sdktrace.ReadOnlySpan, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", contentProtobuf)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %s: %s", url, res.Status, msg)
		}
		return nil
	}
}

// BenchmarkCollect measures spans/s stored by collect from OTLP/HTTP
// protobuf requests as the Go SDK's exporter (otlptracehttp) encodes
// them, against the in-process exporter storing the same spans handed to
// it by the same SDK interface, and (with $LONELYTRACE_JAEGER_BIN)
// against a Jaeger v2 all-in-one storing the same requests in its memory
// store and, in another instance, in its Badger store (its local durable
// one). Each benchmark iteration is a round in which every target, in
// turn (the order rotating), stores 65,536 new spans from 1 or 4 clients,
// each sending batches of 512 one at a time as the SDK's batch processor
// does; the requests are encoded before the clock starts. A target's time
// runs from the first send until its spans are stored: committed to the
// file (ForceFlush) for collect and the in-process exporter, handed to
// its storage by Jaeger's storage exporter (its
// otelcol_exporter_sent_spans counter) for Jaeger. Reported: each
// target's median spans/s over the rounds and median CPU ns per span
// (this process, clients and receivers, and Jaeger's process for Jaeger:
// on a shared machine the CPU is the steadier figure), the medians of the
// per-round ratios collect/inprocess, collect/jaeger-memory and
// collect/jaeger-badger, and collect-cpu/inprocess-cpu, the median of
// the per-round ratios of CPU per span. Two more targets bound what
// collect can reach: writer, collect's writer fed the records of each
// request (decoded before the clock) and committing each before the next
// is sent, as collect's one-client answers wait for; and the in-process
// exporter, whose transactions are as large as its queue makes them.
// Their ratios to Jaeger's stores are reported too. A last target, http,
// posts the same bodies to a server that discards them: its CPU per span
// is what the client and an HTTP server take before any decoding, and
// writer+http-cpu/inprocess-cpu the least collect-cpu/inprocess-cpu can
// be.
//
//	LONELYTRACE_JAEGER_BIN=/path/to/jaeger go test ./internal/collect -run XXX -bench 'Collect/clients=1' -benchtime 15x
func BenchmarkCollect(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchCollect(b, clients) })
	}
}

func benchCollect(b *testing.B, clients int) {
	ctx := context.Background()
	newExporter := func() *exporter.Exporter {
		ex, err := exporter.New(filepath.Join(b.TempDir(), "traces.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := ex.Shutdown(ctx); err != nil {
				b.Error(err)
			}
		})
		return ex
	}
	flushed := func(ex *exporter.Exporter) func(int64) error {
		return func(total int64) error {
			if err := ex.ForceFlush(ctx); err != nil {
				return err
			}
			if s := ex.Stats(); s.Written != total {
				return fmt.Errorf("written %d spans; want %d (dropped %d, failed %d)", s.Written, total, s.Dropped, s.Failed)
			}
			return nil
		}
	}

	colEx := newExporter()
	rcv := New(FileStore(colEx))
	srv := httptest.NewServer(rcv)
	b.Cleanup(srv.Close)
	b.Cleanup(func() {
		if s := rcv.Stats(); s.Retried+s.Refused+s.Rejected > 0 {
			b.Logf("collect: %d requests retried, %d refused, %d spans rejected", s.Retried, s.Refused, s.Rejected)
		}
	})
	targets := []*benchTarget{{name: "collect", clients: clients, send: postTo(srv.URL + TracesPath), settle: flushed(colEx)}}

	inEx := newExporter()
	targets = append(targets, &benchTarget{name: "inprocess", clients: clients, settle: flushed(inEx),
		send: func(ctx context.Context, spans []sdktrace.ReadOnlySpan, _ []byte) error {
			return inEx.ExportSpans(ctx, spans)
		}})

	// The writer alone as collect drives it, each request's records
	// queued and their commit waited for, without HTTP and decoding.
	wrEx := newExporter()
	wrStore := FileStore(wrEx)
	targets = append(targets, &benchTarget{name: "writer", clients: clients, settle: flushed(wrEx),
		store: func(ctx context.Context, rec otlp.Records) error {
			_, rejected, msg, err := wrStore.Store(ctx, rec, time.Second)
			if err == nil && rejected > 0 {
				err = fmt.Errorf("%d spans rejected: %s", rejected, msg)
			}
			return err
		}})

	// HTTP alone: the same client posting the same bodies to a server
	// that reads and discards them, what any OTLP/HTTP receiver's
	// process pays before it decodes a byte.
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", contentProtobuf)
	}))
	b.Cleanup(discard.Close)
	targets = append(targets, &benchTarget{name: "http", clients: clients, send: postTo(discard.URL + TracesPath),
		settle: func(int64) error { return nil }})

	if bin := os.Getenv(envJaegerBin); bin != "" {
		for _, store := range []string{"memory", "badger"} {
			j := startJaeger(b, bin, store)
			targets = append(targets, &benchTarget{name: "jaeger-" + store, clients: clients, send: postTo("http://" + j.otlp + "/v1/traces"), settle: j.stored, cpu: j.cpuTime})
		}
	} else {
		b.Logf("$%s is not set: no comparison with Jaeger", envJaegerBin)
	}
	for _, t := range targets {
		t.next = benchSpans()
	}
	enc := newEncoder(b)

	b.ResetTimer()
	for i := range b.N {
		for k := range targets {
			t := targets[(i+k)%len(targets)]
			r, c, err := t.round(ctx, enc)
			if err != nil {
				b.Fatal(err)
			}
			t.rates, t.cpus = append(t.rates, r), append(t.cpus, c)
		}
	}
	b.StopTimer()
	for _, t := range targets {
		b.ReportMetric(median(t.rates), t.name+"-spans/s")
		b.ReportMetric(median(t.cpus), t.name+"-cpu-ns/span")
	}
	perRound := func(f func(i int) float64) float64 {
		xs := make([]float64, b.N)
		for i := range xs {
			xs[i] = f(i)
		}
		return median(xs)
	}
	col, in, wr, ht, jaegers := targets[0], targets[1], targets[2], targets[3], targets[4:]
	for _, t := range append([]*benchTarget{in, wr}, jaegers...) {
		b.ReportMetric(perRound(func(i int) float64 { return col.rates[i] / t.rates[i] }), "collect/"+t.name)
	}
	// The bounds of collect's ratios: the writer target is collect with
	// a receiver that costs nothing, the in-process exporter the writer
	// with transactions as large as its queue makes them.
	for _, t := range jaegers {
		for _, bound := range []*benchTarget{in, wr} {
			b.ReportMetric(perRound(func(i int) float64 { return bound.rates[i] / t.rates[i] }), bound.name+"/"+t.name)
		}
	}
	b.ReportMetric(perRound(func(i int) float64 { return col.cpus[i] / in.cpus[i] }), "collect-cpu/inprocess-cpu")
	// The least collect's CPU can be: its writer's and HTTP's, with
	// decoding free.
	b.ReportMetric(perRound(func(i int) float64 { return (wr.cpus[i] + ht.cpus[i]) / in.cpus[i] }), "writer+http-cpu/inprocess-cpu")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// jaeger is a running Jaeger all-in-one.
type jaeger struct {
	otlp, metrics string
	pid           int
}

// cpuTime is the CPU ns Jaeger has spent so far, from /proc (in clock
// ticks of 10 ms, assumed: USER_HZ is 100 on Linux), or 0 where there is
// no /proc.
func (j *jaeger) cpuTime() int64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", j.pid))
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis: state is the
	// first, utime and stime the 12th and 13th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + st) * int64(10*time.Millisecond)
}

// jaegerConfig is Jaeger v2 all-in-one's default configuration
// (cmd/jaeger/internal/all-in-one.yaml in Jaeger's repository) for the
// traces path — OTLP receiver, batch processor, storage exporter, metrics
// on — with loopback ports of our choosing, and without the other
// receivers and extensions, which take no part in storing OTLP spans. It
// ends where its one storage backend goes: jaegerMemory, the
// all-in-one's, or jaegerBadger.
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
    logs:
      level: error
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: some_storage
extensions:
  jaeger_query:
    storage:
      traces: some_storage
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      some_storage:
`

// jaegerMemory is the all-in-one's storage: memory, 100,000 traces.
const jaegerMemory = `
        memory:
          max_traces: 100000
`

// jaegerBadger is the one storage line changed as Jaeger's own Badger
// example (cmd/jaeger/config-badger.yaml) changes it: a Badger store kept
// on disk (ephemeral false) in directories of our choosing, with
// everything else, syncing included, at Badger's defaults in Jaeger.
const jaegerBadger = `
        badger:
          directories:
            keys: %s
            values: %s
          ephemeral: false
`

// startJaeger runs a Jaeger all-in-one storing in store (memory or
// badger) on loopback and returns its addresses once it listens.
func startJaeger(b *testing.B, bin, store string) *jaeger {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	j := &jaeger{otlp: free(), metrics: free()}
	query := free()
	_, mport, _ := net.SplitHostPort(j.metrics)
	port, _ := strconv.Atoi(mport)
	dir := b.TempDir()
	conf := fmt.Sprintf(jaegerConfig, port, j.otlp, query, free())
	switch store {
	case "memory":
		conf += jaegerMemory
	case "badger":
		conf += fmt.Sprintf(jaegerBadger, filepath.Join(dir, "keys"), filepath.Join(dir, "values"))
	default:
		b.Fatalf("jaeger store %q: want memory or badger", store)
	}
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	j.pid = cmd.Process.Pid
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err := j.sent(); err != nil {
			continue
		}
		if res, err := http.Get("http://" + query + "/api/services"); err == nil {
			res.Body.Close()
			if c, err := net.Dial("tcp", j.otlp); err == nil {
				c.Close()
				if store == "badger" {
					// The store must be Badger's on disk, not a fallback.
					if _, err := os.Stat(filepath.Join(dir, "values")); err != nil {
						b.Fatalf("jaeger badger: no value directory: %v", err)
					}
				}
				return j
			}
		}
	}
	b.Fatalf("jaeger %s (%s) not ready within 60 s", store, bin)
	return nil
}

// sentSpans is the counter of spans Jaeger's storage exporter has handed
// to its storage.
const sentSpans = "otelcol_exporter_sent_spans_total"

// sent returns the spans Jaeger has stored.
func (j *jaeger) sent() (int64, error) {
	res, err := http.Get("http://" + j.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	var n int64
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, sentSpans); ok && (rest[0] == '{' || rest[0] == ' ') {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' '):]), 64)
			if err != nil {
				return 0, fmt.Errorf("metric line %q: %w", line, err)
			}
			n += int64(f)
		}
	}
	return n, nil
}

// stored returns once Jaeger has stored total spans in all.
func (j *jaeger) stored(total int64) error {
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := j.sent()
		if err != nil {
			return err
		}
		if n >= total {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jaeger stored %d spans; want %d", n, total)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// convertOnly is a Store that takes the spans as the receiver decoded
// them for FileStore and keeps none: BenchmarkReceiver measures the
// receiver's own work, apart from the writer's.
type convertOnly struct{}

func (convertOnly) Store(_ context.Context, rec otlp.Records, _ time.Duration) (int, int, string, error) {
	return len(rec.Spans), rec.Rejected, rec.Msg, nil
}

// BenchmarkReceiver measures what collect does on each request before the
// spans are queued for the writer: read the body, decode it, convert the
// spans, answer. The body is BenchmarkCollect's batch as otlptracehttp
// sends it.
//
//	go test ./internal/collect -run XXX -bench Receiver -benchmem -count 6
func BenchmarkReceiver(b *testing.B) {
	ctx := context.Background()
	var body []byte
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ = io.ReadAll(req.Body)
	}))
	defer capture.Close()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(capture.URL+TracesPath))
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.ExportSpans(ctx, benchSpans()()); err != nil {
		b.Fatal(err)
	}
	exp.Shutdown(ctx)
	rcv := New(convertOnly{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentProtobuf)
		w := httptest.NewRecorder()
		rcv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "spans/s")
}
