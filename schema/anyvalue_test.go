package schema

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

func TestAttributes_AnyValueForms(t *testing.T) {
	for _, c := range []struct {
		name string
		kv   attribute.KeyValue
		json string
	}{
		{"Bytes", attribute.KeyValue{Key: "b", Value: attribute.ByteSliceValue([]byte{0xde, 0xad, 0xbe, 0xef})}, `{"b":{"bytes":"3q2+7w=="}}`},
		{"NoBytes", attribute.KeyValue{Key: "b", Value: attribute.ByteSliceValue(nil)}, `{"b":{"bytes":""}}`},
		{"Mixed", attribute.KeyValue{Key: "s", Value: attribute.SliceValue(attribute.IntValue(1), attribute.StringValue("a"), attribute.Float64Value(2), attribute.Value{})}, `{"s":{"slice":[1,"a",2.0,null]}}`},
		{"NoElements", attribute.KeyValue{Key: "s", Value: attribute.SliceValue()}, `{"s":{"slice":[]}}`},
		{"Nested", attribute.KeyValue{Key: "s", Value: attribute.SliceValue(attribute.Int64SliceValue([]int64{1}), attribute.SliceValue())}, `{"s":{"slice":[[1],{"slice":[]}]}}`},
		{"Map", attribute.KeyValue{Key: "m", Value: attribute.MapValue(attribute.String("float", "NaN"), attribute.Bool("b", true))}, `{"m":{"map":{"b":true,"float":"NaN"}}}`},
		{"Empty", attribute.KeyValue{Key: "e"}, `{"e":null}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(AppendAttributes(nil, []attribute.KeyValue{c.kv}, nil))
			if got != c.json {
				t.Fatalf("encoded = %s; want %s", got, c.json)
			}
			back, err := DecodeAttributes([]byte(got), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != 1 || back[0].Key != c.kv.Key || back[0].Value.Type() != c.kv.Value.Type() || back[0].Value.String() != c.kv.Value.String() {
				t.Fatalf("decoded = %v (%v); want %v (%v)", back, back[0].Value.Type(), c.kv, c.kv.Value.Type())
			}
		})
	}
	t.Run("Bad", func(t *testing.T) {
		for _, bad := range []string{`{"k":{"bytes":1}}`, `{"k":{"bytes":"!!"}}`, `{"k":{"slice":{}}}`, `{"k":{"map":[]}}`, `{"k":{"map":{"a":{"x":1}}}}`} {
			if _, err := DecodeAttributes([]byte(bad), nil); err == nil {
				t.Errorf("DecodeAttributes(%s) = nil error", bad)
			}
		}
	})
}
