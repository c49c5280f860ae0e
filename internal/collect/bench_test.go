package collect

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
// an SDK's batch processor hands them to its exporter.
func benchSpans() func() []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(attribute.String("service.name", "bench"))
	scope := instrumentation.Scope{Name: "bench"}
	stubs := make(tracetest.SpanStubs, benchBatch)
	start := time.Now()
	var n uint64
	return func() []sdktrace.ReadOnlySpan {
		n++
		tid := trace.TraceID{0xbe, byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 1, 2, 3, 4, 5, 6, 7, 8, 9}
		for i := range stubs {
			sid := trace.SpanID{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, byte(i >> 8), byte(i), 1}
			s := tracetest.SpanStub{
				Name:                 "send request",
				SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
				StartTime:            start.Add(time.Duration(i) * time.Microsecond),
				EndTime:              start.Add(time.Duration(i)*time.Microsecond + 300*time.Microsecond),
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

// BenchmarkCollect measures spans/s stored in a trace file by collect from
// the Go SDK's OTLP/HTTP protobuf exporter, against the in-process
// exporter storing the same spans, and (with $LONELYTRACE_JAEGER_BIN)
// against Jaeger's OTLP/HTTP intake taking them from the same client.
// Compare the medians of one run:
//
//	go test ./internal/collect -run XXX -bench Collect -count 6 | benchstat -col /to -
func BenchmarkCollect(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, exp sdktrace.SpanExporter, settle func()) {
		next := benchSpans()
		b.ResetTimer()
		for range b.N {
			if err := exp.ExportSpans(ctx, next()); err != nil {
				b.Fatal(err)
			}
		}
		if settle != nil {
			settle()
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "spans/s")
	}
	b.Run("to=collect", func(b *testing.B) {
		st := mustStore(b)
		srv := httptest.NewServer(New(st))
		defer srv.Close()
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+TracesPath))
		if err != nil {
			b.Fatal(err)
		}
		defer exp.Shutdown(ctx)
		run(b, exp, func() {
			if err := st.ex.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
		})
		if s := st.ex.Stats(); s.Written != int64(b.N*benchBatch) {
			b.Fatalf("written %d spans; want %d", s.Written, b.N*benchBatch)
		}
	})
	b.Run("to=inprocess", func(b *testing.B) {
		ex, err := exporter.New(filepath.Join(b.TempDir(), "traces.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Shutdown(ctx)
		run(b, ex, func() {
			if err := ex.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
		})
		if s := ex.Stats(); s.Written != int64(b.N*benchBatch) {
			b.Fatalf("written %d spans; want %d", s.Written, b.N*benchBatch)
		}
	})
	b.Run("to=jaeger", func(b *testing.B) {
		bin := os.Getenv(envJaegerBin)
		if bin == "" {
			b.Skip("$" + envJaegerBin + " is not set")
		}
		endpoint := startJaeger(b, bin)
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+endpoint+"/v1/traces"))
		if err != nil {
			b.Fatal(err)
		}
		defer exp.Shutdown(ctx)
		run(b, exp, nil)
	})
}

// startJaeger runs a Jaeger all-in-one (memory storage) on loopback and
// returns its OTLP/HTTP address once it listens.
func startJaeger(b *testing.B, bin string) string {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	otlp, query := free(), free()
	cmd := exec.Command(bin,
		"--set=extensions.jaeger_query.http.endpoint="+query,
		"--set=extensions.jaeger_query.grpc.endpoint="+free(),
		"--set=receivers.otlp.protocols.http.endpoint="+otlp,
		"--set=receivers.otlp.protocols.grpc.endpoint="+free(),
		"--set=service.telemetry.metrics.level=none",
		"--set=service.extensions=[jaeger_storage, jaeger_query]",
		"--set=service.pipelines.traces.receivers=[otlp]",
	)
	cmd.Env = append(os.Environ(), "JAEGER_LISTEN_HOST=127.0.0.1")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if res, err := http.Get("http://" + query + "/api/services"); err == nil {
			res.Body.Close()
			if c, err := net.Dial("tcp", otlp); err == nil {
				c.Close()
				return otlp
			}
		}
	}
	b.Fatal(fmt.Sprintf("jaeger (%s) not ready within 60 s", bin))
	return ""
}
