package spanreturn

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const benchTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// BenchmarkMiddleware measures the server side: a notify handler with
// 2+n phases behind the middleware, with span return off (the client did
// not ask: the middleware only starts the server span) and on. The
// difference of ns/op is the added cost; bytes/response the added header.
func BenchmarkMiddleware(b *testing.B) {
	for _, subs := range []int{1, 10} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("subscribers=%d/on=%v", subs, on), func(b *testing.B) {
				proc := NewProcessor()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc),
					sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "broadcaster"))))
				h := proc.Middleware(tp)(notifyHandler(tp, time.Now, subs))
				req := httptest.NewRequest(http.MethodPost, "/v1/notify", nil)
				req.Header.Set("traceparent", benchTraceparent)
				if on {
					req.Header.Set(AskHeader, "1")
				}
				var bytes int
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					bytes = len(rec.Header().Get(Header))
				}
				if on && bytes == 0 {
					b.Fatal("no spans returned")
				}
				b.ReportMetric(float64(bytes+len(Header)+4)*btoi(on), "bytes/response")
			})
		}
	}
}

func btoi(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// BenchmarkReceive measures the client side of one answer: base64,
// decode, checks, clock correction and the hand-over to an exporter.
func BenchmarkReceive(b *testing.B) {
	for _, subs := range []int{1, 10} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			proc := NewProcessor()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
			h := proc.Middleware(tp)(notifyHandler(tp, time.Now, subs))
			req := httptest.NewRequest(http.MethodPost, "/v1/notify", nil)
			req.Header.Set("traceparent", benchTraceparent)
			req.Header.Set(AskHeader, "1")
			t0 := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			t3 := time.Now()
			header := []string{rec.Header().Get(Header)}
			sc := trace.SpanContextFromContext(tracecontext.Extract(context.Background(), headerCarrier{"traceparent": benchTraceparent}))
			r := NewReceiver(tracetest.NewNoopExporter())
			for b.Loop() {
				if err := r.receiveHeader(context.Background(), sc, header, t0, t3); err != nil {
					b.Fatal(err)
				}
			}
			data, _ := base64.RawURLEncoding.DecodeString(header[0])
			a, _ := decode(data, DefaultMaxSpans)
			b.ReportMetric(float64(len(a.spans)), "spans/answer")
		})
	}
}

type headerCarrier map[string]string

func (c headerCarrier) Get(k string) string { return c[k] }
func (c headerCarrier) Set(k, v string)     { c[k] = v }
func (c headerCarrier) Keys() []string      { return nil }

// BenchmarkRoundTrip measures a whole notify on loopback, span return off
// and on at both ends.
func BenchmarkRoundTrip(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("on=%v", on), func(b *testing.B) {
			bc := newBroadcaster(b, 3)
			s := newSubscriber(b, tracetest.NewNoopExporter(), nil, WithEnabled(on))
			ctx, span := s.tp.Tracer("subscriber").Start(context.Background(), "notify")
			defer span.End()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, bc.srv.URL+"/v1/notify", nil)
				resp, err := s.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if on && s.recv.Stats().Answers == 0 {
				b.Fatal("no answers stored")
			}
		})
	}
}
