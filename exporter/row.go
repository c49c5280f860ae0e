package exporter

import (
	"context"
	"unsafe"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// appendRow adds s, of the trace whose traces.id is traceRef, to the
// statement of its column groups, encoding it on the writer goroutine.
func (w *writer) appendRow(ctx context.Context, s sdktrace.ReadOnlySpan, traceRef int64) error {
	groups, start := encodeRow(&w.row, &w.arena, s, w.keyIDs)
	if err := w.keyErr; err != nil {
		w.keyErr = nil
		return err
	}
	return w.addSpan(ctx, s, traceRef, &w.row, groups, start)
}

// addSpan completes row, the encoded values of s, with the ids only the
// writer knows and adds it to the statement of its column groups.
func (w *writer) addSpan(ctx context.Context, s sdktrace.ReadOnlySpan, traceRef int64, row *spanRow, groups int, start int64) error {
	resID, err := w.resourceID(ctx, s.Resource())
	if err != nil {
		return err
	}
	scopeID, err := w.scopeID(ctx, s.InstrumentationScope())
	if err != nil {
		return err
	}
	row[colTrace], row[colResource], row[colScope] = traceRef, resID, scopeID
	w.minStart, w.maxStart = min(w.minStart, start), max(w.maxStart, start)
	return w.addRow(ctx, row, groups)
}

// Indexes in spanRow of the values that encodeRow leaves to the writer.
const (
	colTrace    = 0
	colResource = 19
	colScope    = 20
)

// encodeRow fills r with the spans-table values of s, all but the trace,
// resource and scope ids, and returns its column groups and start time.
// Text and blob values point into the arena a, which must then only grow
// (see arena.text). keyIDs gives the ids of attribute keys.
func encodeRow(r *spanRow, a *arena, s sdktrace.ReadOnlySpan, keyIDs schema.KeyIDFunc) (groups int, start int64) {
	sc := s.SpanContext()
	groups = groupAlways
	r[colTrace], r[colResource], r[colScope] = nil, nil, nil
	spanID := sc.SpanID()
	r[1] = a.blob(spanID[:])
	r[2] = nil
	parent := s.Parent()
	if parent.SpanID().IsValid() {
		pid := parent.SpanID()
		r[2] = a.blob(pid[:])
	}
	r[3] = boolInt(parent.IsRemote())
	r[4] = int64(sc.TraceFlags())
	r[5] = nil
	if ts := sc.TraceState().String(); ts != "" {
		r[5], groups = ts, groups|groupExtra
	}
	r[6] = s.Name()
	r[7] = int64(s.SpanKind())
	start = s.StartTime().UnixNano()
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
		at := len(*a)
		*a = schema.AppendAttributes(*a, attrs, keyIDs)
		r[12] = a.text(at)
	}
	r[13], r[14] = nil, nil
	if ev := s.Events(); len(ev) > 0 {
		at := len(*a)
		*a = schema.AppendEvents(*a, ev)
		r[13], groups = a.text(at), groups|groupExtra
	}
	if ln := s.Links(); len(ln) > 0 {
		at := len(*a)
		*a = schema.AppendLinks(*a, ln)
		r[14], groups = a.text(at), groups|groupExtra
	}
	da, de, dl := s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks()
	r[15], r[16], r[17] = int64(da), int64(de), int64(dl)
	if da != 0 || de != 0 || dl != 0 {
		groups |= groupExtra
	}
	r[18] = int64(s.ChildSpanCount())

	ps := schema.ExtractPubSub(attrs)
	r[21], r[22], r[23], r[24] = nullString(ps.Op), nullString(ps.Topic), nullString(ps.Glob), nullString(ps.Broadcaster)
	r[25], r[26], r[27] = nullInt(ps.BodySize), nullInt(ps.Subscribers), nullInt(int64(ps.Stateful))
	if ps.Op != "" || ps.Topic != "" || ps.Glob != "" || ps.Broadcaster != "" || ps.BodySize >= 0 || ps.Subscribers >= 0 || ps.Stateful >= 0 {
		groups |= groupPubSub
	}
	return groups, start
}

// arena holds the bytes of the text and blob values of encoded rows.
type arena []byte

// blob copies b into the arena and returns the copy.
func (a *arena) blob(b []byte) []byte {
	at := len(*a)
	*a = append(*a, b...)
	return (*a)[at:len(*a):len(*a)]
}

// text returns the bytes of the arena from at to its end as a string
// without copying them. An arena only grows while rows point into it (a
// reallocation leaves the old array to the strings that point into it)
// and is reused only after every such string is dropped; the driver
// copies text into SQLite's memory when it binds it.
func (a *arena) text(at int) string {
	if at == len(*a) {
		return ""
	}
	return unsafe.String(&(*a)[at], len(*a)-at)
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
