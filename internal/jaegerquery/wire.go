package jaegerquery

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Query is what FindTraces asks for: the fields of api_v3's
// TraceQueryParameters that this package sends.
type Query struct {
	// Service is service_name; empty means any.
	Service string
	// Operation is operation_name (a span name); empty means any.
	Operation string
	// Attributes must all match one span (or its resource), each value
	// as a string.
	Attributes map[string]string
	// StartMin and StartMax bound the start times of the spans that
	// match, [StartMin, StartMax); Jaeger requires both.
	StartMin, StartMax time.Time
	// SearchDepth is the most traces the reply may hold.
	SearchDepth int
	// RawTraces asks Jaeger not to adjust the traces (no clock-skew
	// adjuster), so span return's measured offsets survive.
	RawTraces bool
}

// Field numbers of query_service.proto.
const (
	fieldQuery = 1 // FindTracesRequest.query

	fieldService     = 1 // TraceQueryParameters.service_name
	fieldOperation   = 2 // .operation_name
	fieldAttributes  = 3 // .attributes (map<string, string>)
	fieldStartMin    = 4 // .start_time_min
	fieldStartMax    = 5 // .start_time_max
	fieldSearchDepth = 8 // .search_depth
	fieldRawTraces   = 9 // .raw_traces

	fieldTraceID      = 1 // GetTraceRequest.trace_id
	fieldTraceStart   = 2 // .start_time
	fieldTraceEnd     = 3 // .end_time
	fieldTraceRaw     = 4 // .raw_traces
	fieldServiceNames = 1 // GetServicesResponse.services
)

// encodeFindTraces encodes a FindTracesRequest.
func encodeFindTraces(q Query) []byte {
	var p []byte
	p = appendString(p, fieldService, q.Service)
	p = appendString(p, fieldOperation, q.Operation)
	// Map entries sorted, so that a request is the same bytes each time.
	for _, k := range slices.Sorted(maps.Keys(q.Attributes)) {
		var e []byte
		e = appendString(e, 1, k)
		e = appendString(e, 2, q.Attributes[k])
		p = protowire.AppendTag(p, fieldAttributes, protowire.BytesType)
		p = protowire.AppendBytes(p, e)
	}
	p = appendTimestamp(p, fieldStartMin, q.StartMin)
	p = appendTimestamp(p, fieldStartMax, q.StartMax)
	if q.SearchDepth != 0 {
		p = protowire.AppendTag(p, fieldSearchDepth, protowire.VarintType)
		p = protowire.AppendVarint(p, uint64(int64(int32(q.SearchDepth))))
	}
	p = appendBool(p, fieldRawTraces, q.RawTraces)
	b := protowire.AppendTag(nil, fieldQuery, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

// encodeGetTrace encodes a GetTraceRequest; zero times are left out.
func encodeGetTrace(traceID string, start, end time.Time, raw bool) []byte {
	var b []byte
	b = appendString(b, fieldTraceID, traceID)
	b = appendTimestamp(b, fieldTraceStart, start)
	b = appendTimestamp(b, fieldTraceEnd, end)
	return appendBool(b, fieldTraceRaw, raw)
}

// decodeServices decodes a GetServicesResponse, skipping fields it does
// not know as protobuf requires.
func decodeServices(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("decode services reply: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == fieldServiceNames && typ == protowire.BytesType {
			s, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("decode services reply: %w", protowire.ParseError(n))
			}
			out = append(out, string(s))
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, fmt.Errorf("decode services reply: field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return out, nil
}

// appendString appends a string field; proto3 leaves out empty ones.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// appendTimestamp appends a google.protobuf.Timestamp (seconds, nanos).
func appendTimestamp(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	var m []byte
	if s := t.Unix(); s != 0 {
		m = protowire.AppendTag(m, 1, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(s))
	}
	if ns := t.Nanosecond(); ns != 0 {
		m = protowire.AppendTag(m, 2, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(ns))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}
