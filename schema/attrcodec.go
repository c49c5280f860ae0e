package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
)

// The attribute encoding is JSON, so that the sqlite3 shell's JSON
// functions read it, with three rules that keep every OpenTelemetry type:
//
//   - a float is always written with a '.' or an exponent (1.0, not 1), so
//     that it reads back as a float and an int as an int;
//   - a non-finite float is the object {"float":"NaN"} (or "+Inf", "-Inf"),
//     as JSON has no literal for it;
//   - an empty slice is the object {"empty":"INT64SLICE"} (or BOOLSLICE,
//     FLOAT64SLICE, STRINGSLICE), as [] alone would not say which.
//
// Objects are not an attribute type, so these tags cannot be mistaken for a
// value. In the spans table the members of the attributes object are named
// by attribute_keys ids ("3" instead of "messaging.destination.name"); in
// events, links, resources and scopes they are the keys themselves.

// KeyIDFunc returns the id to write in place of a key. Nil writes keys as
// they are.
type KeyIDFunc func(key string) int64

// KeyNameFunc maps an id written by a KeyIDFunc back to its key. Nil reads
// member names as keys.
type KeyNameFunc func(id int64) (string, bool)

// AppendAttributes appends the JSON object of kvs to dst. With ids non-nil,
// member names are the ids it returns.
func AppendAttributes(dst []byte, kvs []attribute.KeyValue, ids KeyIDFunc) []byte {
	dst = append(dst, '{')
	for i, kv := range kvs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if ids != nil {
			dst = append(dst, '"')
			dst = strconv.AppendInt(dst, ids(string(kv.Key)), 10)
			dst = append(dst, '"')
		} else {
			dst = AppendJSONString(dst, string(kv.Key))
		}
		dst = append(dst, ':')
		dst = appendValue(dst, kv.Value)
	}
	return append(dst, '}')
}

func appendValue(dst []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		return strconv.AppendBool(dst, v.AsBool())
	case attribute.INT64:
		return strconv.AppendInt(dst, v.AsInt64(), 10)
	case attribute.FLOAT64:
		return appendFloat(dst, v.AsFloat64())
	case attribute.STRING:
		return AppendJSONString(dst, v.AsString())
	case attribute.BOOLSLICE:
		s := v.AsBoolSlice()
		if len(s) == 0 {
			return append(dst, `{"empty":"BOOLSLICE"}`...)
		}
		dst = append(dst, '[')
		for i, b := range s {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendBool(dst, b)
		}
		return append(dst, ']')
	case attribute.INT64SLICE:
		s := v.AsInt64Slice()
		if len(s) == 0 {
			return append(dst, `{"empty":"INT64SLICE"}`...)
		}
		dst = append(dst, '[')
		for i, n := range s {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, n, 10)
		}
		return append(dst, ']')
	case attribute.FLOAT64SLICE:
		s := v.AsFloat64Slice()
		if len(s) == 0 {
			return append(dst, `{"empty":"FLOAT64SLICE"}`...)
		}
		dst = append(dst, '[')
		for i, f := range s {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendFloat(dst, f)
		}
		return append(dst, ']')
	case attribute.STRINGSLICE:
		s := v.AsStringSlice()
		if len(s) == 0 {
			return append(dst, `{"empty":"STRINGSLICE"}`...)
		}
		dst = append(dst, '[')
		for i, str := range s {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, str)
		}
		return append(dst, ']')
	default:
		if out, ok := appendComplexValue(dst, v); ok { // anyvalue.go
			return out
		}
		// EMPTY (an attribute.Value with no value): keep the key, mark it.
		return append(dst, "null"...)
	}
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `{"float":"NaN"}`...)
	case math.IsInf(f, 1):
		return append(dst, `{"float":"+Inf"}`...)
	case math.IsInf(f, -1):
		return append(dst, `{"float":"-Inf"}`...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	if !bytes.ContainsAny(dst[start:], ".eEn") { // 'n' of "NaN" is handled above
		dst = append(dst, ".0"...)
	}
	return dst
}

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as in encoding/json; '<', '>' and '&' stay as they are because
// the page escapes at render time, not the file.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// ErrBadAttributes is returned for an attribute encoding that this package
// did not write.
var ErrBadAttributes = errors.New("schema: bad attribute encoding")

// DecodeAttributes reads what AppendAttributes wrote. With names non-nil,
// member names are ids to look up; an unknown id is an error.
func DecodeAttributes(data []byte, names KeyNameFunc) ([]attribute.KeyValue, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if kvs, ok := decodeFlat(data, names); ok {
		return kvs, nil
	}
	return decodeAttributesJSON(data, names)
}

// decodeFlat decodes the attributes of data when they are what nearly
// every span holds: strings without escapes, numbers, booleans. It gives
// up (ok false) on anything else, valid or not (a slice, a tagged value,
// null, an escape, invalid UTF-8, an unknown key id, bad JSON), for
// decodeAttributesJSON to decode or to explain: so it never decodes
// differently. It is the export's hot path: encoding/json's token stream
// cost a quarter of an export's CPU.
func decodeFlat(data []byte, names KeyNameFunc) (kvs []attribute.KeyValue, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		if skipSpace(data, i+1) != len(data) {
			return nil, false
		}
		return nil, true
	}
	// Room for every member: a member has at least a ':'.
	kvs = make([]attribute.KeyValue, 0, bytes.Count(data, []byte{':'}))
	for {
		name, j, ok := flatString(data, i)
		if !ok {
			return nil, false
		}
		key := name
		if names != nil {
			id, err := strconv.ParseInt(name, 10, 64)
			if err != nil {
				return nil, false
			}
			if key, ok = names(id); !ok {
				return nil, false
			}
		}
		i = skipSpace(data, j)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return nil, false
		}
		var v attribute.Value
		switch c := data[i]; {
		case c == '"':
			str, j, ok := flatString(data, i)
			if !ok {
				return nil, false
			}
			v, i = attribute.StringValue(str), j
		case c == 't' && bytes.HasPrefix(data[i:], []byte("true")):
			v, i = attribute.BoolValue(true), i+4
		case c == 'f' && bytes.HasPrefix(data[i:], []byte("false")):
			v, i = attribute.BoolValue(false), i+5
		case c == '-' || c >= '0' && c <= '9':
			j := numberEnd(data, i)
			if j < 0 {
				return nil, false
			}
			num := string(data[i:j])
			if isFloatLiteral(num) {
				f, err := strconv.ParseFloat(num, 64)
				if err != nil {
					return nil, false
				}
				v = attribute.Float64Value(f)
			} else {
				n, err := strconv.ParseInt(num, 10, 64)
				if err != nil {
					return nil, false
				}
				v = attribute.Int64Value(n)
			}
			i = j
		default:
			return nil, false
		}
		kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(key), Value: v})
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
			continue
		case '}':
			if skipSpace(data, i+1) != len(data) {
				return nil, false
			}
			return kvs, true
		}
		return nil, false
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// flatString returns the JSON string at data[i] and the index after it,
// when it has no escape, no control character and only valid UTF-8 (which
// encoding/json would have replaced).
func flatString(data []byte, i int) (string, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return "", 0, false
	}
	ascii := true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			s := data[i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return "", 0, false
			}
			return string(s), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", 0, false
}

// numberEnd returns the index after the JSON number at data[i], or -1
// when it is not one by JSON's grammar.
func numberEnd(data []byte, i int) int {
	digits := func(i int) int {
		j := i
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			j++
		}
		return j
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = digits(i)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// decodeAttributesJSON is DecodeAttributes through encoding/json: every
// value the encoding has, and the error that says what is wrong.
func decodeAttributesJSON(data []byte, names KeyNameFunc) ([]attribute.KeyValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// Member order is the stored order, which AppendAttributes took from
	// the sorted attribute set; read the object token by token to keep it.
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAttributes, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: not an object", ErrBadAttributes)
	}
	var kvs []attribute.KeyValue
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadAttributes, err)
		}
		name, _ := tok.(string)
		key := name
		if names != nil {
			id, err := strconv.ParseInt(name, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: member %q is not a key id", ErrBadAttributes, name)
			}
			var ok bool
			if key, ok = names(id); !ok {
				return nil, fmt.Errorf("%w: unknown key id %d", ErrBadAttributes, id)
			}
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrBadAttributes, key, err)
		}
		val, err := toValue(v)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrBadAttributes, key, err)
		}
		kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(key), Value: val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAttributes, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the object", ErrBadAttributes)
	}
	return kvs, nil
}

func toValue(v any) (attribute.Value, error) {
	switch x := v.(type) {
	case nil:
		return attribute.Value{}, nil
	case bool:
		return attribute.BoolValue(x), nil
	case string:
		return attribute.StringValue(x), nil
	case json.Number:
		if isFloatLiteral(string(x)) {
			f, err := x.Float64()
			return attribute.Float64Value(f), err
		}
		n, err := x.Int64()
		return attribute.Int64Value(n), err
	case map[string]any:
		if f, ok := taggedFloat(x); ok {
			return attribute.Float64Value(f), nil
		}
		switch x["empty"] {
		case "BOOLSLICE":
			return attribute.BoolSliceValue([]bool{}), nil
		case "INT64SLICE":
			return attribute.Int64SliceValue([]int64{}), nil
		case "FLOAT64SLICE":
			return attribute.Float64SliceValue([]float64{}), nil
		case "STRINGSLICE":
			return attribute.StringSliceValue([]string{}), nil
		}
		if v, ok, err := complexValue(x); ok { // anyvalue.go
			return v, err
		}
		return attribute.Value{}, errors.New("unknown tagged value")
	case []any:
		return sliceValue(x)
	}
	return attribute.Value{}, fmt.Errorf("unexpected %T", v)
}

func sliceValue(s []any) (attribute.Value, error) {
	kind := attribute.INT64SLICE
	for _, e := range s {
		switch x := e.(type) {
		case bool:
			kind = attribute.BOOLSLICE
		case string:
			kind = attribute.STRINGSLICE
		case map[string]any:
			kind = attribute.FLOAT64SLICE
		case json.Number:
			if isFloatLiteral(string(x)) {
				kind = attribute.FLOAT64SLICE
			}
		default:
			return attribute.Value{}, fmt.Errorf("unexpected %T in a slice", e)
		}
		if kind != attribute.INT64SLICE {
			break
		}
	}
	switch kind {
	case attribute.BOOLSLICE:
		out := make([]bool, len(s))
		for i, e := range s {
			b, ok := e.(bool)
			if !ok {
				return attribute.Value{}, errors.New("mixed slice")
			}
			out[i] = b
		}
		return attribute.BoolSliceValue(out), nil
	case attribute.STRINGSLICE:
		out := make([]string, len(s))
		for i, e := range s {
			str, ok := e.(string)
			if !ok {
				return attribute.Value{}, errors.New("mixed slice")
			}
			out[i] = str
		}
		return attribute.StringSliceValue(out), nil
	case attribute.FLOAT64SLICE:
		out := make([]float64, len(s))
		for i, e := range s {
			switch x := e.(type) {
			case json.Number:
				f, err := x.Float64()
				if err != nil {
					return attribute.Value{}, err
				}
				out[i] = f
			case map[string]any:
				f, ok := taggedFloat(x)
				if !ok {
					return attribute.Value{}, errors.New("unknown tagged value in a slice")
				}
				out[i] = f
			default:
				return attribute.Value{}, errors.New("mixed slice")
			}
		}
		return attribute.Float64SliceValue(out), nil
	default:
		out := make([]int64, len(s))
		for i, e := range s {
			n, err := e.(json.Number).Int64()
			if err != nil {
				return attribute.Value{}, err
			}
			out[i] = n
		}
		return attribute.Int64SliceValue(out), nil
	}
}

func taggedFloat(m map[string]any) (float64, bool) {
	if len(m) != 1 {
		return 0, false
	}
	switch m["float"] {
	case "NaN":
		return math.NaN(), true
	case "+Inf":
		return math.Inf(1), true
	case "-Inf":
		return math.Inf(-1), true
	}
	return 0, false
}

func isFloatLiteral(s string) bool { return strings.ContainsAny(s, ".eE") }
