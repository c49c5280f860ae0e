package otlp

import (
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
)

// attributes returns m as key-values, in m's order. OpenTelemetry Go's
// attribute.Value holds every AnyValue type (schema/anyvalue.go writes
// them), so no value is lost; a map's members come back sorted by key.
func attributes(m pcommon.Map) []attribute.KeyValue {
	if m.Len() == 0 {
		return nil
	}
	kvs := make([]attribute.KeyValue, 0, m.Len())
	for k, v := range m.All() {
		kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(k), Value: value(v)})
	}
	return kvs
}

// appendAttributes is attributes into the free room of *kvs, which it
// uses when it has room for all of m (capped, so that no later append
// reaches the next span's part) and otherwise leaves for a new slice.
func appendAttributes(kvs *[]attribute.KeyValue, m pcommon.Map) []attribute.KeyValue {
	n := m.Len()
	if n == 0 {
		return nil
	}
	free := *kvs
	if cap(free)-len(free) < n {
		return attributes(m)
	}
	at := len(free)
	for k, v := range m.All() {
		free = append(free, attribute.KeyValue{Key: attribute.Key(k), Value: value(v)})
	}
	*kvs = free
	return free[at:len(free):len(free)]
}

func value(v pcommon.Value) attribute.Value {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return attribute.StringValue(v.Str())
	case pcommon.ValueTypeBool:
		return attribute.BoolValue(v.Bool())
	case pcommon.ValueTypeInt:
		return attribute.Int64Value(v.Int())
	case pcommon.ValueTypeDouble:
		return attribute.Float64Value(v.Double())
	case pcommon.ValueTypeBytes:
		return attribute.ByteSliceValue(v.Bytes().AsRaw())
	case pcommon.ValueTypeSlice:
		return sliceValue(v.Slice())
	case pcommon.ValueTypeMap:
		return attribute.MapValue(attributes(v.Map())...)
	}
	return attribute.Value{}
}

// sliceValue keeps a non-empty array of one scalar type as OpenTelemetry
// Go's typed slice (a plain JSON array in the file, as the Go exporter
// writes it); any other array is a slice of values (typedSlice).
func sliceValue(s pcommon.Slice) attribute.Value {
	vals := make([]attribute.Value, s.Len())
	for i := range vals {
		vals[i] = value(s.At(i))
	}
	return typedSlice(vals)
}

// typedSlice is the value of an OTLP array of vals: OpenTelemetry Go's
// typed slice when there is at least one value and all are strings, all
// booleans, all integers or all doubles; else a slice of values. The
// pdata path (sliceValue) and the protobuf decoder (decode.go) share it,
// so that both store an array alike.
func typedSlice(vals []attribute.Value) attribute.Value {
	if len(vals) > 0 && sameType(vals) {
		switch vals[0].Type() {
		case attribute.STRING:
			return attribute.StringSliceValue(convert(vals, attribute.Value.AsString))
		case attribute.BOOL:
			return attribute.BoolSliceValue(convert(vals, attribute.Value.AsBool))
		case attribute.INT64:
			return attribute.Int64SliceValue(convert(vals, attribute.Value.AsInt64))
		case attribute.FLOAT64:
			return attribute.Float64SliceValue(convert(vals, attribute.Value.AsFloat64))
		}
	}
	return attribute.SliceValue(vals...)
}

func sameType(vals []attribute.Value) bool {
	t := vals[0].Type()
	for _, v := range vals[1:] {
		if v.Type() != t {
			return false
		}
	}
	return true
}

func convert[T any](vals []attribute.Value, as func(attribute.Value) T) []T {
	out := make([]T, len(vals))
	for i, v := range vals {
		out[i] = as(v)
	}
	return out
}

// putAttributes appends kvs to m, in order, through fix.
func (fix *utf8Fix) putAttributes(m pcommon.Map, kvs []attribute.KeyValue) {
	if len(kvs) == 0 {
		return
	}
	m.EnsureCapacity(m.Len() + len(kvs))
	for _, kv := range kvs {
		fix.putValue(m.PutEmpty(fix.str(string(kv.Key))), kv.Value)
	}
}

// putValue sets dst, an empty value, to v, its strings through fix.
func (fix *utf8Fix) putValue(dst pcommon.Value, v attribute.Value) {
	switch v.Type() {
	case attribute.BOOL:
		dst.SetBool(v.AsBool())
	case attribute.INT64:
		dst.SetInt(v.AsInt64())
	case attribute.FLOAT64:
		dst.SetDouble(v.AsFloat64())
	case attribute.STRING:
		dst.SetStr(fix.str(v.AsString()))
	case attribute.BYTESLICE:
		dst.SetEmptyBytes().FromRaw(v.AsByteSlice())
	case attribute.BOOLSLICE:
		s := dst.SetEmptySlice()
		for _, b := range v.AsBoolSlice() {
			s.AppendEmpty().SetBool(b)
		}
	case attribute.INT64SLICE:
		s := dst.SetEmptySlice()
		for _, n := range v.AsInt64Slice() {
			s.AppendEmpty().SetInt(n)
		}
	case attribute.FLOAT64SLICE:
		s := dst.SetEmptySlice()
		for _, f := range v.AsFloat64Slice() {
			s.AppendEmpty().SetDouble(f)
		}
	case attribute.STRINGSLICE:
		s := dst.SetEmptySlice()
		for _, str := range v.AsStringSlice() {
			s.AppendEmpty().SetStr(fix.str(str))
		}
	case attribute.SLICE:
		s := dst.SetEmptySlice()
		for _, e := range v.AsSlice() {
			fix.putValue(s.AppendEmpty(), e)
		}
	case attribute.MAP:
		fix.putAttributes(dst.SetEmptyMap(), v.AsMap())
	}
}

// utf8Fix makes the strings that go out valid UTF-8 and counts those it
// had to change. OTLP's strings are UTF-8: protobuf decoders refuse a
// request that holds anything else, and OTLP/JSON written from it is not
// JSON. A file may hold other bytes (import and the Go SDK keep what they
// are given, and the file keeps what it took), so the one conversion out
// of the file repairs them (docs/design.md, "Invalid UTF-8").
type utf8Fix struct {
	n int // strings changed
}

// str returns s with each byte that does not start a valid UTF-8
// sequence replaced by U+FFFD, as encoding/json and a range loop read
// it, so that the viewer's JSON and OTLP agree on the characters.
func (fix *utf8Fix) str(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	fix.n++
	var b strings.Builder
	b.Grow(len(s) + 2*utf8.UTFMax)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
