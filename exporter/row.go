package exporter

import (
	"context"
	"fmt"
	"unsafe"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// appendRow fills w.row with the spans-table values of s and adds it to
// the statement of its column groups.
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
	r := &w.row
	groups := groupAlways
	r[0] = traceRef
	spanID := sc.SpanID()
	r[1] = w.blob(spanID[:])
	r[2] = nil
	if p := s.Parent(); p.SpanID().IsValid() {
		pid := p.SpanID()
		r[2] = w.blob(pid[:])
	}
	r[3] = boolInt(s.Parent().IsRemote())
	r[4] = int64(sc.TraceFlags())
	r[5] = nil
	if ts := sc.TraceState().String(); ts != "" {
		r[5], groups = ts, groups|groupExtra
	}
	r[6] = s.Name()
	r[7] = int64(s.SpanKind())
	start := s.StartTime().UnixNano()
	w.minStart, w.maxStart = min(w.minStart, start), max(w.maxStart, start)
	r[8] = start
	r[9] = s.EndTime().UnixNano()
	status := s.Status()
	r[10] = otlpStatus(status.Code)
	r[11] = nil
	if status.Description != "" {
		r[11], groups = status.Description, groups|groupExtra
	}

	attrs := s.Attributes()
	r[12] = nil
	if len(attrs) > 0 {
		at := len(w.arena)
		w.arena = schema.AppendAttributes(w.arena, attrs, w.keyIDs)
		if err := w.keyErr; err != nil {
			w.keyErr = nil
			return err
		}
		r[12] = w.text(at)
	}
	r[13], r[14] = nil, nil
	if ev := s.Events(); len(ev) > 0 {
		at := len(w.arena)
		w.arena = schema.AppendEvents(w.arena, ev)
		r[13], groups = w.text(at), groups|groupExtra
	}
	if ln := s.Links(); len(ln) > 0 {
		at := len(w.arena)
		w.arena = schema.AppendLinks(w.arena, ln)
		r[14], groups = w.text(at), groups|groupExtra
	}
	da, de, dl := s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks()
	r[15], r[16], r[17] = int64(da), int64(de), int64(dl)
	if da != 0 || de != 0 || dl != 0 {
		groups |= groupExtra
	}
	r[18] = int64(s.ChildSpanCount())
	r[19], r[20] = resID, scopeID

	ps := schema.ExtractPubSub(attrs)
	r[21], r[22], r[23], r[24] = nullString(ps.Op), nullString(ps.Topic), nullString(ps.Glob), nullString(ps.Broadcaster)
	r[25], r[26], r[27] = nullInt(ps.BodySize), nullInt(ps.Subscribers), nullInt(int64(ps.Stateful))
	if ps.Op != "" || ps.Topic != "" || ps.Glob != "" || ps.Broadcaster != "" || ps.BodySize >= 0 || ps.Subscribers >= 0 || ps.Stateful >= 0 {
		groups |= groupPubSub
	}
	return w.addRow(ctx, r, groups)
}

// blob copies b into the arena and returns the copy.
func (w *writer) blob(b []byte) []byte {
	at := len(w.arena)
	w.arena = append(w.arena, b...)
	return w.arena[at:len(w.arena):len(w.arena)]
}

// text returns the bytes of the arena from at to its end as a string
// without copying them. The arena only grows during a transaction (a
// reallocation leaves the old array to the strings that point into it)
// and is reused only after clearRows has dropped every such string; the
// driver copies text into SQLite's memory when it binds it.
func (w *writer) text(at int) string {
	if at == len(w.arena) {
		return ""
	}
	return unsafe.String(&w.arena[at], len(w.arena)-at)
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
