package schema

import (
	"encoding/hex"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
		dst = append(dst, `{"name":`...)
		dst = AppendJSONString(dst, ev.Name)
		dst = append(dst, `,"time_ns":`...)
		dst = strconv.AppendInt(dst, ev.Time.UnixNano(), 10)
		dst = appendAttrsMember(dst, ev.Attributes, ev.DroppedAttributeCount)
		dst = append(dst, '}')
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
		tid, sid := sc.TraceID(), sc.SpanID()
		dst = append(dst, `{"trace_id":"`...)
		dst = hex.AppendEncode(dst, tid[:])
		dst = append(dst, `","span_id":"`...)
		dst = hex.AppendEncode(dst, sid[:])
		dst = append(dst, `","flags":`...)
		dst = strconv.AppendInt(dst, int64(sc.TraceFlags()), 10)
		if ts := sc.TraceState().String(); ts != "" {
			dst = append(dst, `,"trace_state":`...)
			dst = AppendJSONString(dst, ts)
		}
		if sc.IsRemote() {
			dst = append(dst, `,"remote":true`...)
		}
		dst = appendAttrsMember(dst, l.Attributes, l.DroppedAttributeCount)
		dst = append(dst, '}')
	}
	return append(dst, ']')
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
