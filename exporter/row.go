package exporter

import (
	"unsafe"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// spanFields are the values of a span's row that the span alone gives,
// held unboxed until the writer binds them (bindRow): encoded ahead, a
// batch of them takes half the memory of their values boxed.
type spanFields struct {
	name, traceState, statusMessage   string
	attributes, events, links         string
	op, topic, glob, broadcaster      string
	start, end, childCount            int64
	bodySize, subscribers             int64 // -1: absent
	dropAttrs, dropEvents, dropLinks  int64
	spanID, parentID                  [8]byte
	flags                             uint32 // records keep OTLP's bits 8 and 9 (records.go)
	kind, status                      uint8
	stateful                          int8 // -1: absent
	hasParent, parentRemote, hasAttrs bool
	groups                            uint8
}

// addSpan adds the span s, of the trace whose traces.id is traceRef, to
// the statement of its column groups. f is its fields encoded ahead, or
// nil: then the writer encodes it here.
func (w *writer) addSpan(s queued, traceRef int64, f *spanFields) error {
	if f == nil {
		f = &w.fields
		encodeRow(f, &w.arena, s, w.keyIDs)
		if err := w.keyErr; err != nil {
			w.keyErr = nil
			return err
		}
	}
	res, scope := s.resourceScope()
	resID, err := w.resourceID(res)
	if err != nil {
		return err
	}
	scopeID, err := w.scopeID(scope)
	if err != nil {
		return err
	}
	w.useResourceScope(resID, scopeID)
	w.minStart, w.maxStart = min(w.minStart, f.start), max(w.maxStart, f.start)
	return w.bindRow(f, traceRef, resID, scopeID)
}

// encodeRow sets f to the fields of s, an SDK span (encodeFields) or a
// record (encodeRecord). Its text points into the arena.
func encodeRow(f *spanFields, a *arena, s queued, keyIDs schema.KeyIDFunc) {
	if s.rec != nil {
		encodeRecord(f, a, s.rec.span, keyIDs)
		return
	}
	encodeFields(f, a, s.span, keyIDs)
}

// encodeFields sets f to the fields of s. Its text points into the arena
// a, which must then only grow (see arena.text). keyIDs gives the ids of
// attribute keys.
func encodeFields(f *spanFields, a *arena, s sdktrace.ReadOnlySpan, keyIDs schema.KeyIDFunc) {
	sc := s.SpanContext()
	groups := groupAlways
	f.spanID = sc.SpanID()
	parent := s.Parent()
	f.parentID, f.hasParent = parent.SpanID(), parent.SpanID().IsValid()
	f.parentRemote = parent.IsRemote()
	f.flags = uint32(sc.TraceFlags())
	f.traceState = sc.TraceState().String()
	f.name = s.Name()
	f.kind = uint8(s.SpanKind())
	f.start, f.end = s.StartTime().UnixNano(), s.EndTime().UnixNano()
	status := s.Status()
	f.status, f.statusMessage = otlpStatus(status.Code), status.Description

	attrs := s.Attributes()
	f.attributes, f.hasAttrs = "", len(attrs) > 0
	if f.hasAttrs {
		at := len(*a)
		*a = schema.AppendAttributes(*a, attrs, keyIDs)
		f.attributes = a.text(at)
	}
	f.events, f.links = "", ""
	if ev := s.Events(); len(ev) > 0 {
		at := len(*a)
		*a = schema.AppendEvents(*a, ev)
		f.events = a.text(at)
	}
	if ln := s.Links(); len(ln) > 0 {
		at := len(*a)
		*a = schema.AppendLinks(*a, ln)
		f.links = a.text(at)
	}
	f.dropAttrs, f.dropEvents, f.dropLinks = int64(s.DroppedAttributes()), int64(s.DroppedEvents()), int64(s.DroppedLinks())
	if f.traceState != "" || f.statusMessage != "" || f.events != "" || f.links != "" || f.dropAttrs != 0 || f.dropEvents != 0 || f.dropLinks != 0 {
		groups |= groupExtra
	}
	f.childCount = int64(s.ChildSpanCount())

	ps := schema.ExtractPubSub(attrs)
	f.op, f.topic, f.glob, f.broadcaster = ps.Op, ps.Topic, ps.Glob, ps.Broadcaster
	f.bodySize, f.subscribers, f.stateful = ps.BodySize, ps.Subscribers, int8(ps.Stateful)
	if ps.Op != "" || ps.Topic != "" || ps.Glob != "" || ps.Broadcaster != "" || ps.BodySize >= 0 || ps.Subscribers >= 0 || ps.Stateful >= 0 {
		groups |= groupPubSub
	}
	f.groups = uint8(groups)
}

// arena holds the bytes of the text and blob values of encoded rows.
type arena []byte

// text returns the bytes of the arena from at to its end as a string
// without copying them. An arena only grows while rows point into it (a
// reallocation leaves the old array to the strings that point into it)
// and is reused only after every such string is dropped; the writer
// copies text into C memory when it adds a row (bindRow).
func (a *arena) text(at int) string {
	if at == len(*a) {
		return ""
	}
	return unsafe.String(&(*a)[at], len(*a)-at)
}

// otlpStatus maps the Go API's status codes to OTLP's numbers, which the
// file uses: 0 unset, 1 ok, 2 error.
func otlpStatus(c codes.Code) uint8 {
	switch c {
	case codes.Ok:
		return schema.StatusOK
	case codes.Error:
		return schema.StatusError
	}
	return schema.StatusUnset
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
