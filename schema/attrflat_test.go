package schema

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

// flatCases are attribute objects for the fast decoder: those it takes
// and those it must hand to encoding/json (escapes, invalid UTF-8, slices,
// tags, null, bad JSON, numbers out of range or against JSON's grammar).
var flatCases = []string{
	`{}`, ` { } `, `{"a":"b"}`, `{"a":1,"b":-2,"c":1.5,"d":1e3,"e":-0.25E-2,"f":true,"g":false}`,
	`{ "a" : "b" , "c" : 0 }`, `{"a":"é ü 日本"}`, "{\"a\":\"\xff\"}", `{"a":"x\"y"}`, `{"a\n":"b"}`,
	`{"a":"\u00e9"}`, `{"a":null}`, `{"a":[1,2]}`, `{"a":{"float":"NaN"}}`, `{"a":{"empty":"INT64SLICE"}}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":9223372036854775808}`, `{"a":-9223372036854775808}`,
	`{"a":1e400}`, `{"a":truex}`, `{"a":tru}`, `{"a":1,}`, `{"a":1}x`, `{"a":1} `, `{"a" 1}`, `{"a":1`, `{"a":"b`,
	`{"a":1,"a":2}`, `[]`, `"a"`, `{`, `{"a":"b"}{}`, "{\"a\":\"\t\"}", `{"a":"b:c","d":"e,f}"}`,
}

// TestDecodeFlat_SameAsJSON checks that DecodeAttributes, through its fast
// path, gives what encoding/json gives for every case, values and errors
// alike, with keys as names and as ids.
func TestDecodeFlat_SameAsJSON(t *testing.T) {
	names := func(id int64) (string, bool) {
		if id < 0 || id > 9 {
			return "", false
		}
		return fmt.Sprintf("key%d", id), true
	}
	idCases := []string{`{"1":"x","2":3}`, `{"10":"x"}`, `{"-1":1}`, `{"a":1}`, `{"01":2}`, `{"1":{"float":"+Inf"}}`}
	check := func(t *testing.T, data string, names KeyNameFunc) {
		got, gotErr := DecodeAttributes([]byte(data), names)
		want, wantErr := decodeAttributesJSON([]byte(data), names)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%q: error %v; want %v", data, gotErr, wantErr)
		}
		if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("%q: %v; want %v", data, got, want)
		}
	}
	for _, c := range flatCases {
		check(t, c, nil)
	}
	for _, c := range append(idCases, flatCases...) {
		check(t, c, names)
	}
	// What AppendAttributes writes for every flat type comes back whole.
	kvs := []attribute.KeyValue{attribute.String("s", "v"), attribute.Int64("i", math.MinInt64),
		attribute.Float64("f", 3), attribute.Float64("g", 1e-300), attribute.Bool("b", true), attribute.String("e", "")}
	data := AppendAttributes(nil, kvs, nil)
	if _, ok := decodeFlat(data, nil); !ok {
		t.Fatalf("decodeFlat(%s) gave up", data)
	}
	check(t, string(data), nil)
}

// FuzzDecodeFlat checks the fast path against encoding/json on any input.
func FuzzDecodeFlat(f *testing.F) {
	for _, c := range flatCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, data string) {
		got, ok := decodeFlat([]byte(data), nil)
		if !ok {
			return
		}
		want, err := decodeAttributesJSON([]byte(data), nil)
		if err != nil {
			t.Fatalf("%q: fast path took what encoding/json refuses: %v", data, err)
		}
		if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("%q: %v; want %v", data, got, want)
		}
	})
}
