package schema

import (
	"encoding/base64"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
)

// The value types that OpenTelemetry added after the first four scalars
// and their slices (bytes, slices of any values, maps: what OTLP's
// AnyValue holds) are written as one more set of single-member objects,
// next to {"float":…} and {"empty":…}:
//
//   - bytes: {"bytes":"<standard base64>"};
//   - a slice of any values (attribute.SLICE: mixed types, nested slices
//     or maps, empty values, or no elements): {"slice":[v,…]}, each
//     element in this same encoding;
//   - a map (attribute.MAP): {"map":{"key":v,…}}, each member in this same
//     encoding.
//
// A slice of one scalar type keeps its plain JSON array. These forms are
// additive: files without them read as before. A lonelytrace older than
// them reports a span that holds one as a bad attribute encoding
// (ErrBadAttributes) instead of guessing (schema/README.md).

// appendComplexValue appends the tagged forms of BYTESLICE, SLICE and
// MAP; ok is false for any other type.
func appendComplexValue(dst []byte, v attribute.Value) (_ []byte, ok bool) {
	switch v.Type() {
	case attribute.BYTESLICE:
		b := v.AsByteSlice()
		dst = append(dst, `{"bytes":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, `"}`...), true
	case attribute.SLICE:
		dst = append(dst, `{"slice":[`...)
		for i, e := range v.AsSlice() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, "]}"...), true
	case attribute.MAP:
		dst = append(dst, `{"map":`...)
		dst = AppendAttributes(dst, v.AsMap(), nil)
		return append(dst, '}'), true
	}
	return dst, false
}

// complexValue reads the tagged forms appendComplexValue writes; ok is
// false when m is none of them.
func complexValue(m map[string]any) (_ attribute.Value, ok bool, err error) {
	if len(m) != 1 {
		return attribute.Value{}, false, nil
	}
	if x, found := m["bytes"]; found {
		s, isString := x.(string)
		if !isString {
			return attribute.Value{}, true, errors.New("bytes that are not a base64 string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return attribute.Value{}, true, fmt.Errorf("bytes: %v", err)
		}
		return attribute.ByteSliceValue(b), true, nil
	}
	if x, found := m["slice"]; found {
		elems, isArray := x.([]any)
		if !isArray {
			return attribute.Value{}, true, errors.New("a slice that is not an array")
		}
		vals := make([]attribute.Value, len(elems))
		for i, e := range elems {
			v, err := toValue(e)
			if err != nil {
				return attribute.Value{}, true, fmt.Errorf("slice[%d]: %v", i, err)
			}
			vals[i] = v
		}
		return attribute.SliceValue(vals...), true, nil
	}
	if x, found := m["map"]; found {
		members, isObject := x.(map[string]any)
		if !isObject {
			return attribute.Value{}, true, errors.New("a map that is not an object")
		}
		kvs := make([]attribute.KeyValue, 0, len(members))
		for k, e := range members {
			v, err := toValue(e)
			if err != nil {
				return attribute.Value{}, true, fmt.Errorf("map member %q: %v", k, err)
			}
			kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(k), Value: v})
		}
		return attribute.MapValue(kvs...), true, nil
	}
	return attribute.Value{}, false, nil
}
