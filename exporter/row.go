package exporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// appendRow appends the spans-table arguments of s to w.args, in the order
// of spanColumns.
func (w *writer) appendRow(ctx context.Context, s sdktrace.ReadOnlySpan) error {
	sc := s.SpanContext()
	traceRef, ok := w.traceRef(sc.TraceID())
	if !ok {
		return fmt.Errorf("trace %s was not resolved", sc.TraceID())
	}
	resID, err := w.resourceID(ctx, s.Resource())
	if err != nil {
		return err
	}
	scopeID, err := w.scopeID(ctx, s.InstrumentationScope())
	if err != nil {
		return err
	}
	spanID := sc.SpanID()
	var parentID, traceState any
	if p := s.Parent(); p.SpanID().IsValid() {
		pid := p.SpanID()
		parentID = pid[:]
	}
	if ts := sc.TraceState().String(); ts != "" {
		traceState = ts
	}
	status := s.Status()
	var statusMessage any
	if status.Description != "" {
		statusMessage = status.Description
	}

	attrs := s.Attributes()
	var attrsArg, eventsArg, linksArg any
	if len(attrs) > 0 {
		w.buf = schema.AppendAttributes(w.buf[:0], attrs, w.keyIDs)
		if err := w.keyErr; err != nil {
			w.keyErr = nil
			return err
		}
		attrsArg = string(w.buf)
	}
	if ev := s.Events(); len(ev) > 0 {
		w.buf = schema.AppendEvents(w.buf[:0], ev)
		eventsArg = string(w.buf)
	}
	if ln := s.Links(); len(ln) > 0 {
		w.buf = schema.AppendLinks(w.buf[:0], ln)
		linksArg = string(w.buf)
	}

	start := s.StartTime().UnixNano()
	w.minStart, w.maxStart = min(w.minStart, start), max(w.maxStart, start)
	ps := schema.ExtractPubSub(attrs)
	w.args = append(w.args,
		traceRef, spanID[:], parentID, boolInt(s.Parent().IsRemote()), int64(sc.TraceFlags()), traceState,
		s.Name(), int64(s.SpanKind()), start, s.EndTime().UnixNano(),
		otlpStatus(status.Code), statusMessage,
		attrsArg, eventsArg, linksArg,
		int64(s.DroppedAttributes()), int64(s.DroppedEvents()), int64(s.DroppedLinks()), int64(s.ChildSpanCount()),
		resID, scopeID,
		nullString(ps.Op), nullString(ps.Topic), nullString(ps.Glob), nullString(ps.Broadcaster),
		nullInt(ps.BodySize), nullInt(ps.Subscribers), nullInt(int64(ps.Stateful)),
	)
	return nil
}

// otlpStatus maps the Go API's status codes to OTLP's numbers, which the
// file uses: 0 unset, 1 ok, 2 error.
func otlpStatus(c codes.Code) int64 {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullInt maps the -1 that schema.PubSub uses for "absent" to NULL.
func nullInt(n int64) any {
	if n < 0 {
		return nil
	}
	return n
}
