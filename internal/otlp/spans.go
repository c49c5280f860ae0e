package otlp

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Spans converts td into the spans a lonelytrace file stores. A span with
// an invalid trace or span id (all zero; pdata has already refused ids of
// the wrong length), with no start time, or that ends before it starts is
// left out whole and counted in rejected; msg then says how many, with the
// first one's place and reason, for an OTLP partial success answer. (A
// span without a start would be stored in 1970 and stretch its trace over
// fifty years; docs/design.md, "Collect".)
//
// What the file has no place for is dropped: the dropped attribute counts
// of resources and scopes. Everything else comes back out of Traces.
func Spans(td ptrace.Traces) (spans []schema.Span, rejected int, msg string) {
	spans = make([]schema.Span, 0, td.SpanCount())
	kvs := spanAttributes(td)
	var first string
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := schema.Resource{SchemaURL: rs.SchemaUrl(), Attributes: attributes(rs.Resource().Attributes())}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			sc := ss.Scope()
			scope := schema.Scope{Name: sc.Name(), Version: sc.Version(), SchemaURL: ss.SchemaUrl(), Attributes: attributes(sc.Attributes())}
			ps := ss.Spans()
			for k := range ps.Len() {
				p := ps.At(k)
				if why := invalid(p); why != "" {
					if rejected == 0 {
						first = fmt.Sprintf("resourceSpans[%d].scopeSpans[%d].spans[%d]: %s", i, j, k, why)
					}
					rejected++
					continue
				}
				s := span(p, &kvs)
				s.Resource, s.Scope = res, scope
				spans = append(spans, s)
			}
		}
	}
	if rejected > 0 {
		msg = fmt.Sprintf("%d %s rejected; the first: %s", rejected, plural(rejected, "span", "spans"), first)
	}
	return spans, rejected, msg
}

// invalid says why p cannot be stored, or "" when it can.
func invalid(p ptrace.Span) string {
	switch {
	case p.TraceID().IsEmpty():
		return "trace id is all zero"
	case p.SpanID().IsEmpty():
		return "span id is all zero"
	case p.StartTimestamp() == 0:
		return "start time is 0 (unset)"
	case p.EndTimestamp() < p.StartTimestamp():
		// Compared as the uint64 nanoseconds OTLP sends, so an end of 0
		// (unset) is before any start.
		return fmt.Sprintf("end time %d ns is before start time %d ns", uint64(p.EndTimestamp()), uint64(p.StartTimestamp()))
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// spanAttributes returns room for the attributes of every span of td, so
// that converting them takes one allocation rather than one per span.
func spanAttributes(td ptrace.Traces) []attribute.KeyValue {
	n := 0
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			ps := sss.At(j).Spans()
			for k := range ps.Len() {
				n += ps.At(k).Attributes().Len()
			}
		}
	}
	return make([]attribute.KeyValue, 0, n)
}

// span converts p, leaving out its resource and scope. Its attributes are
// appended to *kvs, which has room for them, and keep their part of it.
func span(p ptrace.Span, kvs *[]attribute.KeyValue) schema.Span {
	flags := p.Flags()
	s := schema.Span{
		TraceID:           trace.TraceID(p.TraceID()),
		SpanID:            trace.SpanID(p.SpanID()),
		ParentSpanID:      trace.SpanID(p.ParentSpanID()),
		ParentRemote:      flags&schema.FlagIsRemote != 0,
		Flags:             trace.TraceFlags(flags),
		OTLPFlags:         flags,
		TraceState:        p.TraceState().AsRaw(),
		Name:              p.Name(),
		Kind:              trace.SpanKind(p.Kind()),
		Start:             nsTime(p.StartTimestamp()),
		End:               nsTime(p.EndTimestamp()),
		StatusMsg:         p.Status().Message(),
		Attributes:        appendAttributes(kvs, p.Attributes()),
		DroppedAttributes: int(p.DroppedAttributesCount()),
		DroppedEvents:     int(p.DroppedEventsCount()),
		DroppedLinks:      int(p.DroppedLinksCount()),
		PubSub:            schema.PubSub{BodySize: -1, Subscribers: -1, Stateful: -1},
	}
	switch p.Status().Code() {
	case ptrace.StatusCodeOk:
		s.StatusCode = codes.Ok
	case ptrace.StatusCodeError:
		s.StatusCode = codes.Error
	}
	if evs := p.Events(); evs.Len() > 0 {
		s.Events = make([]schema.Event, evs.Len())
		for i := range s.Events {
			e := evs.At(i)
			s.Events[i] = schema.Event{Name: e.Name(), Time: nsTime(e.Timestamp()),
				Attributes: attributes(e.Attributes()), DroppedAttributes: int(e.DroppedAttributesCount())}
		}
	}
	if ls := p.Links(); ls.Len() > 0 {
		s.Links = make([]schema.Link, ls.Len())
		for i := range s.Links {
			l := ls.At(i)
			lf := l.Flags()
			s.Links[i] = schema.Link{TraceID: trace.TraceID(l.TraceID()), SpanID: trace.SpanID(l.SpanID()),
				Flags: trace.TraceFlags(lf), OTLPFlags: lf, TraceState: l.TraceState().AsRaw(),
				Remote: lf&schema.FlagIsRemote != 0, Attributes: attributes(l.Attributes()),
				DroppedAttributes: int(l.DroppedAttributesCount())}
		}
	}
	return s
}

// nsTime keeps every uint64 timestamp: one past MaxInt64 comes back
// through UnixNano as the same bits.
func nsTime(ts pcommon.Timestamp) time.Time { return time.Unix(0, int64(ts)) }

func timestamp(t time.Time) pcommon.Timestamp { return pcommon.Timestamp(uint64(t.UnixNano())) }
