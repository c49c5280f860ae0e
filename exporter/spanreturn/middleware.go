package spanreturn

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const (
	// Header is the response header that carries the returned spans,
	// base64url without padding.
	Header = "Lonelytrace-Spans"
	// AskHeader is the request header by which a client asks for its
	// spans back; its value is the highest encoding version it reads
	// ("1"). Servers answer only requests that carry it, so spans never go
	// to clients that did not ask.
	AskHeader = "Lonelytrace-Return-Spans"
	// ScopeName is the instrumentation scope of the server spans the
	// middleware starts.
	ScopeName = "github.com/lonelytrace/lonelytrace/exporter/spanreturn"
)

// tracecontext is the W3C Trace Context propagator: the only one span
// return reads and writes, whatever the global propagator is.
var tracecontext propagation.TraceContext

// Middleware returns net/http middleware that returns to each client that
// asked (AskHeader) the spans its request produced on this server, in the
// Header of the response.
//
// The request's server span is the one already in the request's context
// when an outer instrumentation (otelhttp) started one; otherwise the
// middleware starts it from tp, as a child of the W3C traceparent of the
// request, named by the request's pattern or method, and ends it. Spans
// are returned only when the request carried a sampled traceparent of the
// server span's trace.
//
// The header is added when the response starts (the first WriteHeader or
// Write, or the handler's return), because headers cannot follow the body:
// spans ended by then ride home, those ending later go to WithNext. The
// server span is returned as it is at that moment, ending then.
func (p *Processor) Middleware(tp trace.TracerProvider) func(http.Handler) http.Handler {
	tracer := tp.Tracer(ScopeName)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := r.Pattern
			if name == "" {
				name = r.Method
			}
			ctx, end, g := p.begin(tracer, r, name)
			if end == nil && g == nil {
				next.ServeHTTP(w, r)
				return
			}
			rw := &responseWriter{ResponseWriter: w, span: trace.SpanFromContext(ctx), g: g}
			returned := false
			defer func() {
				if !returned { // panicking: no answer will be written
					g.Cancel()
					rw.status = http.StatusInternalServerError
				}
				rw.start(http.StatusOK) // a handler that wrote nothing answers 200
				if end != nil {
					end(rw.status)
				}
			}()
			next.ServeHTTP(rw, r.WithContext(ctx))
			returned = true
		})
	}
}

// begin finds or starts the request's server span and, if the client asked,
// starts gathering. end is non-nil when the middleware started the span
// and so must end it.
func (p *Processor) begin(tracer trace.Tracer, r *http.Request, name string) (ctx context.Context, end func(status int), g *Gather) {
	ctx = r.Context()
	remote := trace.SpanContextFromContext(tracecontext.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
	span := trace.SpanFromContext(ctx)
	if !span.SpanContext().IsValid() {
		t1 := p.cfg.now()
		ctx, span = tracer.Start(trace.ContextWithRemoteSpanContext(ctx, remote), name,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(t1),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", r.URL.Path),
			))
		end = func(status int) {
			setResponseStatus(span, status)
			span.End(trace.WithTimestamp(p.cfg.now()))
		}
	}
	if p.cfg.enabled && r.Header.Get(AskHeader) != "" && remote.IsSampled() &&
		span.SpanContext().TraceID() == remote.TraceID() {
		g = p.Begin(span)
	}
	return ctx, end, g
}

// setResponseStatus records the answer's status code on a server span and
// sets the span's status as the HTTP semantic conventions do for a
// server: Error for a 5xx answer; a 4xx is the client's error, not the
// server's, and leaves it unset.
func setResponseStatus(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
}

// responseWriter adds the Header when the response starts.
type responseWriter struct {
	http.ResponseWriter
	span    trace.Span
	g       *Gather
	status  int
	started bool
}

// start runs once, just before the response's header is written.
func (w *responseWriter) start(status int) {
	if w.started {
		return
	}
	w.started = true
	if w.status == 0 {
		w.status = status
	}
	if w.g == nil {
		return
	}
	// The snapshot that rides home shows how the request ended: its
	// status is final before the spans are encoded.
	setResponseStatus(w.span, w.status)
	if data := w.g.Finish(); data != nil {
		w.Header().Set(Header, base64.RawURLEncoding.EncodeToString(data))
	}
}

func (w *responseWriter) WriteHeader(status int) {
	// 1xx responses other than 101 precede the real one.
	if status >= 200 || status == http.StatusSwitchingProtocols {
		w.start(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.start(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Flush starts the response, then flushes it if the underlying writer can.
func (w *responseWriter) Flush() {
	w.start(http.StatusOK)
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over, for websockets; the spans gathered so
// far are dropped from the answer (they go to WithNext), since no header
// can be written any more.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("spanreturn: response writer cannot hijack")
	}
	w.started = true
	w.g.Cancel()
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
