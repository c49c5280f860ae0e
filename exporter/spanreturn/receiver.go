package spanreturn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// The attributes the Receiver puts on the spans it stores. Times are Unix
// nanoseconds: t0 and t3 on the client's clock, t1 and t2 on the server's.
const (
	// ClockOffsetKey is the server's clock minus the client's, as
	// estimated, in nanoseconds: ((t1-t0)+(t2-t3))/2. It is on every
	// returned span; adding it back gives the server's own times.
	ClockOffsetKey = attribute.Key("lonelytrace.clock_offset_ns")
	// ClockErrorKey bounds the error of ClockOffsetKey:
	// ((t3-t0)-(t2-t1))/2, half the time the request and its answer spent
	// on the network.
	ClockErrorKey = attribute.Key("lonelytrace.clock_error_ns")
	// ClientSentKey is t0, when the client sent the request.
	ClientSentKey = attribute.Key("lonelytrace.client_sent_ns")
	// ServerReceivedKey is t1, when the server received the request.
	ServerReceivedKey = attribute.Key("lonelytrace.server_received_ns")
	// ServerSentKey is t2, when the server started its answer.
	ServerSentKey = attribute.Key("lonelytrace.server_sent_ns")
	// ClientReceivedKey is t3, when the client received the answer.
	ClientReceivedKey = attribute.Key("lonelytrace.client_received_ns")
	// OmittedKey counts the spans the server left out to stay in bounds.
	OmittedKey = attribute.Key("lonelytrace.spans_omitted")
)

// timeSlack is how far outside the server's [t1, t2] a returned span may
// lie: an outer instrumentation starts the server span a little before the
// middleware reads t1, and the server span may end while being encoded.
const timeSlack = 100 * time.Millisecond

// exportTimeout bounds how long a request waits for a full exporter queue.
const exportTimeout = 100 * time.Millisecond

// A Reason says why the Receiver dropped an answer.
type Reason string

// The reasons, the keys of ReceiverStats.Dropped.
const (
	// ReasonMalformed: not an answer of a known version (garbage,
	// truncation, bad base64, a count larger than the bytes left, several
	// headers).
	ReasonMalformed Reason = "malformed"
	// ReasonTooLarge: longer than WithMaxBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonTooMany: more spans than WithMaxSpans.
	ReasonTooMany Reason = "too_many"
	// ReasonWrongTrace: another trace than the request's, or spans whose
	// ids do not hang from the request's span, or ids repeated.
	ReasonWrongTrace Reason = "wrong_trace"
	// ReasonBadTime: server times that cannot be: answered before
	// received, busier than the round trip, spans outside the request.
	ReasonBadTime Reason = "bad_time"
	// ReasonClockOffset: a clock offset beyond WithMaxClockOffset.
	ReasonClockOffset Reason = "clock_offset"
	// ReasonExport: the local exporter failed.
	ReasonExport Reason = "export"
)

var reasons = [...]Reason{ReasonMalformed, ReasonTooLarge, ReasonTooMany, ReasonWrongTrace, ReasonBadTime, ReasonClockOffset, ReasonExport}

// DropError is the error of an answer the Receiver dropped.
type DropError struct {
	Reason Reason
	Err    error
}

func (e *DropError) Error() string {
	return fmt.Sprintf("spanreturn: dropped (%s): %v", e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *DropError) Unwrap() error { return e.Err }

// ReceiverStats counts what a Receiver did since it was made.
type ReceiverStats struct {
	// Answers is the number of answers stored, Spans the spans in them.
	Answers, Spans int64
	// Omitted is the number of spans servers said they left out.
	Omitted int64
	// Dropped counts the answers dropped, per reason; every reason is
	// present.
	Dropped map[Reason]int64
}

// Receiver is the client side: it takes the spans a server returned,
// checks them, moves them onto the local clock and exports them to a local
// exporter, beside the client's own spans of the same trace.
type Receiver struct {
	cfg config
	exp sdktrace.SpanExporter
	mu  sync.Mutex // ExportSpans is not called concurrently

	answers, spans, omitted atomic.Int64
	dropped                 [len(reasons)]atomic.Int64
}

// NewReceiver returns a Receiver that stores in exp, configured by opts:
// WithMaxBytes, WithMaxSpans, WithMaxClockOffset, WithClock, WithEnabled.
// The Receiver calls exp.ExportSpans on the request's goroutine, one call
// at a time, giving it at most 100 ms; exp must tolerate calls concurrent
// with the SDK's own (the lonelytrace exporter does: it only queues).
func NewReceiver(exp sdktrace.SpanExporter, opts ...Option) *Receiver {
	return &Receiver{cfg: newConfig(opts), exp: exp}
}

// Stats returns the Receiver's counts.
func (r *Receiver) Stats() ReceiverStats {
	s := ReceiverStats{
		Answers: r.answers.Load(),
		Spans:   r.spans.Load(),
		Omitted: r.omitted.Load(),
		Dropped: make(map[Reason]int64, len(reasons)),
	}
	for i, reason := range reasons {
		s.Dropped[reason] = r.dropped[i].Load()
	}
	return s
}

func (r *Receiver) drop(reason Reason, err error) error {
	for i, x := range reasons {
		if x == reason {
			r.dropped[i].Add(1)
		}
	}
	return &DropError{Reason: reason, Err: err}
}

// Transport wraps base (http.DefaultTransport when nil) so that each
// request made within a sampled span asks for its spans back and stores
// what the server returns. It injects the W3C traceparent of the
// request's context unless the request already carries one (an outer
// otelhttp transport), whose span then is the one the server's spans hang
// from. Requests without a sampled trace context pass untouched.
func (r *Receiver) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{r: r, base: base}
}

type transport struct {
	r    *Receiver
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := t.r
	ctx := req.Context()
	sc := trace.SpanContextFromContext(tracecontext.Extract(context.Background(), propagation.HeaderCarrier(req.Header)))
	inject := !sc.IsValid()
	if inject {
		sc = trace.SpanContextFromContext(ctx)
	}
	if !sc.IsValid() {
		return t.base.RoundTrip(req)
	}
	req = req.Clone(ctx) // a RoundTripper must not change the caller's request
	if inject {
		// Switched off or not, the trace goes on across the call.
		tracecontext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	if !r.cfg.enabled || !sc.IsSampled() {
		return t.base.RoundTrip(req)
	}
	req.Header.Set(AskHeader, "1")
	t0 := r.cfg.now()
	resp, err := t.base.RoundTrip(req)
	t3 := r.cfg.now()
	if err != nil {
		return resp, err
	}
	if vs := resp.Header.Values(Header); len(vs) > 0 {
		resp.Header.Del(Header)
		_ = r.receiveHeader(ctx, sc, vs, t0, t3) // counted in Stats
	}
	return resp, nil
}

func (r *Receiver) receiveHeader(ctx context.Context, sc trace.SpanContext, vs []string, t0, t3 time.Time) error {
	if len(vs) != 1 {
		return r.drop(ReasonMalformed, fmt.Errorf("%d %s headers", len(vs), Header))
	}
	if len(vs[0]) > r.cfg.maxBytes {
		return r.drop(ReasonTooLarge, fmt.Errorf("header of %d bytes, limit %d", len(vs[0]), r.cfg.maxBytes))
	}
	data, err := base64.RawURLEncoding.DecodeString(vs[0])
	if err != nil {
		return r.drop(ReasonMalformed, fmt.Errorf("decode header: %w", err))
	}
	return r.Receive(ctx, sc, data, t0, t3)
}

// Receive stores an answer received on a stateful connection: data is
// the frame field the server's Gather.Finish produced, sc the span context
// the request was sent under (its trace id and span id are what the
// answer must hang from), sent and received the local times t0 and t3 at
// which the request left and the answer arrived. An answer that fails a
// check is dropped whole, counted, and reported as a *DropError.
func (r *Receiver) Receive(ctx context.Context, sc trace.SpanContext, data []byte, sent, received time.Time) error {
	if len(data) > rawLimit(r.cfg.maxBytes) {
		return r.drop(ReasonTooLarge, fmt.Errorf("%d bytes, limit %d", len(data), rawLimit(r.cfg.maxBytes)))
	}
	a, err := decode(data, r.cfg.maxSpans)
	switch {
	case errors.Is(err, errTooMany):
		return r.drop(ReasonTooMany, err)
	case err != nil:
		return r.drop(ReasonMalformed, err)
	}
	if reason, err := r.check(a, sc, sent.UnixNano(), received.UnixNano()); err != nil {
		return r.drop(reason, err)
	}
	spans := r.localize(a, sc, sent.UnixNano(), received.UnixNano())
	if len(spans) > 0 {
		ctx, cancel := context.WithTimeout(ctx, exportTimeout)
		r.mu.Lock()
		err = r.exp.ExportSpans(ctx, spans)
		r.mu.Unlock()
		cancel()
		if err != nil {
			return r.drop(ReasonExport, fmt.Errorf("export %d spans: %w", len(spans), err))
		}
	}
	r.answers.Add(1)
	r.spans.Add(int64(len(spans)))
	r.omitted.Add(int64(min(a.omitted, 1<<62)))
	return nil
}

// check validates an answer against the request it answers.
func (r *Receiver) check(a answer, sc trace.SpanContext, t0, t3 int64) (Reason, error) {
	if a.traceID != sc.TraceID() {
		return ReasonWrongTrace, fmt.Errorf("trace %s, request's %s", a.traceID, sc.TraceID())
	}
	ids := make(map[trace.SpanID]bool, len(a.spans)+1)
	ids[sc.SpanID()] = true
	for i, s := range a.spans {
		if !s.id.IsValid() || ids[s.id] {
			return ReasonWrongTrace, fmt.Errorf("spans[%d]: id %s invalid or repeated", i, s.id)
		}
		ids[s.id] = true
	}
	for i, s := range a.spans {
		if !ids[s.parent] {
			return ReasonWrongTrace, fmt.Errorf("spans[%d]: parent %s not in the request", i, s.parent)
		}
	}
	if t3 < t0 {
		return ReasonBadTime, fmt.Errorf("answer received %d ns before the request was sent", t0-t3)
	}
	if a.t2-a.t1 > t3-t0+int64(timeSlack) {
		return ReasonBadTime, fmt.Errorf("server busy %d ns in a round trip of %d ns", a.t2-a.t1, t3-t0)
	}
	limit := int64(r.cfg.maxClockOffset) + (t3 - t0)
	d1, d2 := a.t1-t0, a.t2-t3
	if d1 > limit || d1 < -limit || d2 > limit || d2 < -limit {
		return ReasonClockOffset, fmt.Errorf("server received at %d, client sent at %d", a.t1, t0)
	}
	if off := (d1 + d2) / 2; off > int64(r.cfg.maxClockOffset) || off < -int64(r.cfg.maxClockOffset) {
		return ReasonClockOffset, fmt.Errorf("clock offset %v over %v", time.Duration(off), r.cfg.maxClockOffset)
	}
	lo, hi := a.t1-int64(timeSlack), a.t2+int64(timeSlack)
	for i, s := range a.spans {
		if s.start < lo || s.end > hi {
			return ReasonBadTime, fmt.Errorf("spans[%d] %q: [%d, %d] outside the request [%d, %d]", i, s.name, s.start, s.end, a.t1, a.t2)
		}
		for j, e := range s.events {
			if e.time < lo || e.time > hi {
				return ReasonBadTime, fmt.Errorf("spans[%d].events[%d]: %d outside the request", i, j, e.time)
			}
		}
	}
	return "", nil
}

// localize turns a checked answer into spans on the local clock.
func (r *Receiver) localize(a answer, sc trace.SpanContext, t0, t3 int64) []sdktrace.ReadOnlySpan {
	off := ((a.t1 - t0) + (a.t2 - t3)) / 2
	bound := ((t3 - t0) - (a.t2 - a.t1)) / 2
	local := func(ns int64) time.Time { return time.Unix(0, ns-off) }
	res := resource.NewSchemaless(a.resource...)
	out := make([]sdktrace.ReadOnlySpan, 0, len(a.spans))
	for _, s := range a.spans {
		attrs := make([]attribute.KeyValue, 0, len(s.attrs)+7)
		attrs = append(attrs, s.attrs...)
		attrs = append(attrs, ClockOffsetKey.Int64(off))
		if s.parent == sc.SpanID() {
			attrs = append(attrs,
				ClockErrorKey.Int64(max(bound, 0)),
				ClientSentKey.Int64(t0), ServerReceivedKey.Int64(a.t1),
				ServerSentKey.Int64(a.t2), ClientReceivedKey.Int64(t3))
			if a.truncated || a.omitted > 0 {
				attrs = append(attrs, OmittedKey.Int64(int64(min(a.omitted, 1<<62))))
			}
		}
		events := make([]sdktrace.Event, len(s.events))
		for i, e := range s.events {
			events[i] = sdktrace.Event{Name: e.name, Time: local(e.time), Attributes: e.attrs}
		}
		out = append(out, tracetest.SpanStub{
			Name: s.name,
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: a.traceID, SpanID: s.id, TraceFlags: trace.FlagsSampled,
			}),
			Parent: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: a.traceID, SpanID: s.parent, TraceFlags: trace.FlagsSampled,
				Remote: s.parentRemote,
			}),
			SpanKind:             s.kind,
			StartTime:            local(s.start),
			EndTime:              local(s.end),
			Attributes:           attrs,
			Events:               events,
			Status:               sdktrace.Status{Code: s.code, Description: s.desc},
			Resource:             res,
			InstrumentationScope: instrumentation.Scope{Name: s.scope, Version: s.ver},
		}.Snapshot())
	}
	return out
}
