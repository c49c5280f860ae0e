package load

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/HTTP traces endpoint on loopback that decodes every
// request and counts its spans, standing in for a collector. It runs in
// this process, so it measures the CPU it spends itself, for the result to
// tell it apart from the exporter's.
type receiver struct {
	srv   *http.Server
	ln    net.Listener
	spans atomic.Int64
	bytes atomic.Int64 // request bodies, as sent
	cpu   atomic.Int64 // ns
	pool  sync.Pool    // *bytes.Buffer
	resp  []byte
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	resp, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		ln.Close()
		return nil, err
	}
	r := &receiver{ln: ln, resp: resp}
	r.pool.New = func() any { return new(bytes.Buffer) }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serve)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) url() string { return "http://" + r.ln.Addr().String() + "/v1/traces" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	// The handler keeps its OS thread while it reads and decodes, so that
	// the thread's CPU time is this request's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	defer func() { r.cpu.Add(int64(threadCPU() - cpu0)) }()

	buf := r.pool.Get().(*bytes.Buffer)
	defer r.pool.Put(buf)
	buf.Reset()
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	if _, err := buf.ReadFrom(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(buf.Bytes(), &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n int64
	for _, rs := range msg.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += int64(len(ss.Spans))
		}
	}
	r.spans.Add(n)
	r.bytes.Add(int64(buf.Len()))
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(r.resp)
}

func (r *receiver) close(ctx context.Context) error {
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func startOTLP(ctx context.Context) (pipeline, error) {
	r, err := newReceiver()
	if err != nil {
		return pipeline{}, fmt.Errorf("receiver: %w", err)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(r.url()))
	if err != nil {
		_ = r.close(ctx)
		return pipeline{}, err
	}
	// The SDK's default batch processor, as otelsetup builds it for
	// OTEL_TRACES_EXPORTER=otlp.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	return pipeline{
		tracer: tp.Tracer(tracerName),
		counts: func() (int64, int64, int64) { return r.spans.Load(), 0, 0 },
		shutdown: func(ctx context.Context) error {
			err := tp.Shutdown(ctx)
			if e := r.close(ctx); e != nil && err == nil {
				err = e
			}
			return err
		},
		wire:        func() int64 { return r.bytes.Load() },
		receiverCPU: func() time.Duration { return time.Duration(r.cpu.Load()) },
	}, nil
}

// sent counts the spans of the batches its exporter delivered: with the
// receiver in another process, the spans it answered for are what this
// process knows to be stored.
type sent struct {
	sdktrace.SpanExporter
	n atomic.Int64
}

func (s *sent) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := s.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		s.n.Add(int64(len(spans)))
	}
	return err
}

// startOTLPTo is the OTLP mode sending to a receiver elsewhere, at url.
func startOTLPTo(ctx context.Context, url string) (pipeline, error) {
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url))
	if err != nil {
		return pipeline{}, err
	}
	s := &sent{SpanExporter: exp}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(s))
	return pipeline{
		tracer:   tp.Tracer(tracerName),
		counts:   func() (int64, int64, int64) { return s.n.Load(), 0, 0 },
		shutdown: tp.Shutdown,
	}, nil
}
