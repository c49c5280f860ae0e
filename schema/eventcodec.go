package schema

import (
	"encoding/hex"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// AppendEvents appends the JSON array the spans.events column holds:
// [{"name":…,"time_ns":…,"attributes":{…},"dropped_attributes":…}], with
// attributes and dropped_attributes left out when empty.
func AppendEvents(dst []byte, events []sdktrace.Event) []byte {
	dst = append(dst, '[')
	for i, ev := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEvent(dst, ev.Name, ev.Time.UnixNano(), ev.Attributes, ev.DroppedAttributeCount)
	}
	return append(dst, ']')
}

// AppendLinks appends the JSON array the spans.links column holds:
// [{"trace_id":hex,"span_id":hex,"flags":…,"trace_state":…,"remote":true,
// "attributes":{…},"dropped_attributes":…}], with empty members left out.
func AppendLinks(dst []byte, links []sdktrace.Link) []byte {
	dst = append(dst, '[')
	for i, l := range links {
		if i > 0 {
			dst = append(dst, ',')
		}
		sc := l.SpanContext
		dst = appendLink(dst, sc.TraceID(), sc.SpanID(), uint64(sc.TraceFlags()), sc.TraceState().String(), sc.IsRemote(), l.Attributes, l.DroppedAttributeCount)
	}
	return append(dst, ']')
}

// appendEvent appends one member of the events array.
func appendEvent(dst []byte, name string, timeNs int64, attrs []attribute.KeyValue, dropped int) []byte {
	dst = append(dst, `{"name":`...)
	dst = AppendJSONString(dst, name)
	dst = append(dst, `,"time_ns":`...)
	dst = strconv.AppendInt(dst, timeNs, 10)
	dst = appendAttrsMember(dst, attrs, dropped)
	return append(dst, '}')
}

// appendLink appends one member of the links array.
func appendLink(dst []byte, tid trace.TraceID, sid trace.SpanID, flags uint64, traceState string, remote bool, attrs []attribute.KeyValue, dropped int) []byte {
	dst = append(dst, `{"trace_id":"`...)
	dst = hex.AppendEncode(dst, tid[:])
	dst = append(dst, `","span_id":"`...)
	dst = hex.AppendEncode(dst, sid[:])
	dst = append(dst, `","flags":`...)
	dst = strconv.AppendUint(dst, flags, 10)
	if traceState != "" {
		dst = append(dst, `,"trace_state":`...)
		dst = AppendJSONString(dst, traceState)
	}
	if remote {
		dst = append(dst, `,"remote":true`...)
	}
	dst = appendAttrsMember(dst, attrs, dropped)
	return append(dst, '}')
}

func appendAttrsMember(dst []byte, attrs []attribute.KeyValue, dropped int) []byte {
	if len(attrs) > 0 {
		dst = append(dst, `,"attributes":`...)
		dst = AppendAttributes(dst, attrs, nil)
	}
	if dropped > 0 {
		dst = append(dst, `,"dropped_attributes":`...)
		dst = strconv.AppendInt(dst, int64(dropped), 10)
	}
	return dst
}
