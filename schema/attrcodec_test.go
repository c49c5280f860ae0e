package schema_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/lonelytrace/lonelytrace/schema"
)

func typed(kvs []attribute.KeyValue) string {
	s := ""
	for _, kv := range kvs {
		s += fmt.Sprintf("%s:%s=%s;", kv.Key, kv.Value.Type(), kv.Value.String())
	}
	return s
}

func TestAttributes_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		kvs  []attribute.KeyValue
	}{
		{"Empty", nil},
		{"Scalars", []attribute.KeyValue{attribute.Bool("a", false), attribute.Int64("b", math.MinInt64), attribute.Float64("c", -0.5), attribute.String("d", "")}},
		{"FloatWithoutFraction", []attribute.KeyValue{attribute.Float64("f", 3), attribute.Float64("g", 1e21), attribute.Float64("h", 5e-324)}},
		{"NonFinite", []attribute.KeyValue{attribute.Float64("n", math.NaN()), attribute.Float64("p", math.Inf(1)), attribute.Float64Slice("s", []float64{math.Inf(-1), 2})}},
		{"Slices", []attribute.KeyValue{attribute.BoolSlice("b", []bool{true}), attribute.Int64Slice("i", []int64{0}), attribute.Float64Slice("f", []float64{0}), attribute.StringSlice("s", []string{"x", "y"})}},
		{"EmptySlices", []attribute.KeyValue{attribute.BoolSlice("b", nil), attribute.Int64Slice("i", []int64{}), attribute.Float64Slice("f", nil), attribute.StringSlice("s", nil)}},
		{"Escapes", []attribute.KeyValue{attribute.String("k\"ey\n", "\x00\x1f\"\\\u2028</script>\xff\xfe")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ids := range []bool{false, true} {
				var idf schema.KeyIDFunc
				var namef schema.KeyNameFunc
				if ids {
					m := map[string]int64{}
					r := map[int64]string{}
					idf = func(k string) int64 {
						if _, ok := m[k]; !ok {
							m[k] = int64(len(m) + 1)
							r[m[k]] = k
						}
						return m[k]
					}
					namef = func(id int64) (string, bool) { k, ok := r[id]; return k, ok }
				}
				enc := schema.AppendAttributes(nil, tc.kvs, idf)
				if !json.Valid(enc) {
					t.Fatalf("ids=%v: %s is not valid JSON", ids, enc)
				}
				got, err := schema.DecodeAttributes(enc, namef)
				if err != nil {
					t.Fatalf("ids=%v: decode %s: %v", ids, enc, err)
				}
				want := tc.kvs
				if tc.name == "Escapes" { // invalid UTF-8 becomes U+FFFD, as in encoding/json
					want = []attribute.KeyValue{attribute.String("k\"ey\n", "\x00\x1f\"\\\u2028</script>\ufffd\ufffd")}
				}
				if typed(got) != typed(want) {
					t.Errorf("ids=%v: round trip of %s = %s; want %s", ids, enc, typed(got), typed(want))
				}
			}
		})
	}
}

func TestDecodeAttributes_Bad(t *testing.T) {
	names := func(id int64) (string, bool) { return "k", id == 1 }
	for _, in := range []string{`[]`, `{"1":`, `{"2":1}`, `{"x":1}`, `{"1":{"float":"huge"}}`, `{"1":[1,"a"]}`, `{"1":[[1]]}`, `{"1":1}{`, `"s"`} {
		if _, err := schema.DecodeAttributes([]byte(in), names); err == nil {
			t.Errorf("DecodeAttributes(%s) = nil error; want one", in)
		}
	}
}

// FuzzAttributes checks that whatever DecodeAttributes accepts encodes back
// to something that decodes to the same attributes, and that it never
// panics.
func FuzzAttributes(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":1,"b":1.0,"c":"x","d":true,"e":[1,2],"f":[1.5],"g":["x"],"h":[false]}`,
		`{"n":{"float":"NaN"},"e":{"empty":"STRINGSLICE"}}`, `{"x":null}`, `{"big":9223372036854775807}`,
		`{"a":[{"float":"+Inf"},1.0]}`, `{"":""}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kvs, err := schema.DecodeAttributes(data, nil)
		if err != nil {
			return
		}
		enc := schema.AppendAttributes(nil, kvs, nil)
		again, err := schema.DecodeAttributes(enc, nil)
		if err != nil {
			t.Fatalf("re-decode of %s (from %q): %v", enc, data, err)
		}
		if typed(again) != typed(kvs) {
			t.Fatalf("round trip changed %s into %s", typed(kvs), typed(again))
		}
	})
}

func TestExtractPubSub(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  schema.PubSub
	}{
		{"None", nil, schema.PubSub{BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"Notify", []attribute.KeyValue{schema.Operation("notify"), schema.Topic("t"), schema.BodySize(0), schema.Subscribers(3), schema.Stateful(false), schema.Broadcaster("b")},
			schema.PubSub{Op: "notify", Topic: "t", Broadcaster: "b", BodySize: 0, Subscribers: 3, Stateful: 0}},
		{"UnknownOperation", []attribute.KeyValue{schema.Operation("publishh")}, schema.PubSub{BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"TypeSend", []attribute.KeyValue{schema.OperationTypeKey.String("send")}, schema.PubSub{Op: "notify", BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"TypePublish", []attribute.KeyValue{schema.OperationTypeKey.String("publish")}, schema.PubSub{Op: "notify", BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"TypeProcess", []attribute.KeyValue{schema.OperationTypeKey.String("process")}, schema.PubSub{Op: "receive", BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"NameBeatsType", []attribute.KeyValue{schema.Operation("missed"), schema.OperationTypeKey.String("send")}, schema.PubSub{Op: "missed", BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"ServerAddress", []attribute.KeyValue{schema.ServerAddressKey.String("h"), schema.ServerPortKey.Int(80)}, schema.PubSub{Broadcaster: "h:80", BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"ServerAddressNoPort", []attribute.KeyValue{schema.ServerAddressKey.String("h")}, schema.PubSub{Broadcaster: "h", BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"BroadcasterBeatsAddress", []attribute.KeyValue{schema.ServerAddressKey.String("h"), schema.Broadcaster("b")}, schema.PubSub{Broadcaster: "b", BodySize: -1, Subscribers: -1, Stateful: -1}},
		{"WrongTypes", []attribute.KeyValue{schema.BodySizeKey.String("12"), schema.SubscribersKey.Float64(2), schema.StatefulKey.String("true"), schema.TopicKey.Int(5)}, schema.PubSub{BodySize: -1, Subscribers: -1, Stateful: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := schema.ExtractPubSub(tc.attrs); got != tc.want {
				t.Errorf("ExtractPubSub = %+v; want %+v", got, tc.want)
			}
		})
	}
}
