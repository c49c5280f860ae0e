package jaegerquery

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestEncodeFindTraces(t *testing.T) {
	q := Query{Service: "orders", StartMin: time.Unix(1700000000, 5), StartMax: time.Unix(1700003600, 0), SearchDepth: 7, RawTraces: true,
		Attributes: map[string]string{"messaging.operation.name": "notify", "b": "2"}}
	got, err := decodeFindQuery(encodeFindTraces(q))
	if err != nil {
		t.Fatal(err)
	}
	want := findQuery{service: "orders", startMin: q.StartMin, startMax: q.StartMax, depth: 7, raw: true, attrs: "b=2;messaging.operation.name=notify;"}
	if got != want {
		t.Errorf("decoded %+v; want %+v", got, want)
	}
	if a, b := encodeFindTraces(q), encodeFindTraces(q); !slices.Equal(a, b) {
		t.Error("two encodings of one query differ")
	}
}

func FuzzDecodeServices(f *testing.F) {
	var ok []byte
	for _, s := range []string{"orders", "", "ünïcode"} {
		ok = protowire.AppendTag(ok, 1, protowire.BytesType)
		ok = protowire.AppendString(ok, s)
	}
	f.Add(ok)
	f.Add([]byte{0x0a, 0xff})
	f.Add([]byte{0x10, 0x01, 0x0a, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeServices(b)
		if err == nil {
			// Every name decoded is re-encoded within the input.
			n := 0
			for _, x := range s {
				n += len(x)
			}
			if n > len(b) {
				t.Errorf("decoded %d bytes of names from %d bytes", n, len(b))
			}
		}
	})
}
