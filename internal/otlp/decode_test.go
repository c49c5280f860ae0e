package otlp_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/schema"
)

// viaPdata is the path DecodeProto replaces: pdata's decoder, then
// RecordsOf.
func viaPdata(data []byte) (otlp.Records, error) {
	td, err := otlp.UnmarshalProto(data)
	if err != nil {
		return otlp.Records{}, err
	}
	return otlp.RecordsOf(td), nil
}

// sameRecords compares records field by field; a NaN in a float slice
// is equal to itself here, as the file stores it.
func sameRecords(a, b otlp.Records) bool {
	if len(a.Spans) == 0 && len(b.Spans) == 0 {
		a.Spans, b.Spans = nil, nil // no span, in either form
	}
	return reflect.DeepEqual(a, b) || fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// checkDecode fails unless DecodeProto and the pdata path agree on data:
// both refuse it, or both give the same records.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	want, werr := viaPdata(data)
	got, gerr := otlp.DecodeProto(data)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("DecodeProto error = %v; the pdata path's = %v (request %x)", gerr, werr, data)
	}
	if werr != nil {
		return
	}
	if !sameRecords(got, want) {
		t.Fatalf("records differ (request %x):\ngot  %+v\nwant %+v", data, got, want)
	}
}

func marshal(tb testing.TB, td ptrace.Traces) []byte {
	tb.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// randomTraces returns traces of a few resources, scopes and spans with
// random fields: ids all zero or not, times in or out of order, values
// of every type nested, strings that are not UTF-8.
func randomTraces(r *rand.Rand) ptrace.Traces {
	td := ptrace.NewTraces()
	str := func() string {
		alphabet := []string{"a", "ß", "\xff", "op", "messaging.destination.name", "lonelytrace.subscribers", "", "\x00"}
		var b strings.Builder
		for range r.IntN(4) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	var value func(v pcommon.Value, depth int)
	putAttrs := func(m pcommon.Map, depth int) {
		for range r.IntN(5) {
			value(m.PutEmpty(str()), depth+1)
		}
	}
	value = func(v pcommon.Value, depth int) {
		n := 8
		if depth > 3 {
			n = 6
		}
		switch r.IntN(n) {
		case 0:
			v.SetStr(str())
		case 1:
			v.SetBool(r.IntN(2) == 0)
		case 2:
			v.SetInt(r.Int64() - r.Int64())
		case 3:
			v.SetDouble([]float64{0, -1.5, math.Inf(1), math.NaN(), r.Float64()}[r.IntN(5)])
		case 4:
			b := make([]byte, r.IntN(3))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			v.SetEmptyBytes().FromRaw(b)
		case 5:
			// empty
		case 6:
			s := v.SetEmptySlice()
			kind := r.IntN(3)
			for range r.IntN(4) {
				if kind == 0 {
					s.AppendEmpty().SetStr(str())
				} else {
					value(s.AppendEmpty(), depth+1)
				}
			}
		case 7:
			putAttrs(v.SetEmptyMap(), depth)
		}
	}
	id := func(n int) []byte {
		b := make([]byte, n)
		if r.IntN(8) != 0 {
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		}
		return b
	}
	for range 1 + r.IntN(3) {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl(str())
		putAttrs(rs.Resource().Attributes(), 0)
		rs.Resource().SetDroppedAttributesCount(r.Uint32())
		for range r.IntN(3) {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl(str())
			ss.Scope().SetName(str())
			ss.Scope().SetVersion(str())
			putAttrs(ss.Scope().Attributes(), 0)
			for range r.IntN(4) {
				p := ss.Spans().AppendEmpty()
				p.SetTraceID(pcommon.TraceID(id(16)))
				p.SetSpanID(pcommon.SpanID(id(8)))
				if r.IntN(2) == 0 {
					p.SetParentSpanID(pcommon.SpanID(id(8)))
				}
				p.SetFlags([]uint32{0, 1, 0x101, 0x301, 0x200, r.Uint32()}[r.IntN(6)])
				p.TraceState().FromRaw(str())
				p.SetName(str())
				p.SetKind(ptrace.SpanKind(r.IntN(7)))
				start := []uint64{0, 1, 1 << 63, r.Uint64()}[r.IntN(4)]
				p.SetStartTimestamp(pcommon.Timestamp(start))
				p.SetEndTimestamp(pcommon.Timestamp([]uint64{0, start, start + 1000, r.Uint64()}[r.IntN(4)]))
				p.Status().SetCode(ptrace.StatusCode(r.IntN(4)))
				p.Status().SetMessage(str())
				putAttrs(p.Attributes(), 0)
				p.SetDroppedAttributesCount(r.Uint32())
				p.SetDroppedEventsCount(uint32(r.IntN(3)))
				p.SetDroppedLinksCount(uint32(r.IntN(3)))
				for range r.IntN(3) {
					e := p.Events().AppendEmpty()
					e.SetName(str())
					e.SetTimestamp(pcommon.Timestamp(r.Uint64()))
					putAttrs(e.Attributes(), 0)
					e.SetDroppedAttributesCount(uint32(r.IntN(3)))
				}
				for range r.IntN(3) {
					l := p.Links().AppendEmpty()
					l.SetTraceID(pcommon.TraceID(id(16)))
					l.SetSpanID(pcommon.SpanID(id(8)))
					l.SetFlags([]uint32{0, 1, 0x301, r.Uint32()}[r.IntN(4)])
					l.TraceState().FromRaw(str())
					putAttrs(l.Attributes(), 0)
					l.SetDroppedAttributesCount(uint32(r.IntN(3)))
				}
			}
		}
	}
	return td
}

// TestDecodeProto_MatchesPdata decodes random requests, and the rich
// ones of the other tests, both ways: the records must be the same.
func TestDecodeProto_MatchesPdata(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 22))
		checkDecode(t, marshal(t, randomTraces(r)))
	}
	for _, n := range []int{0, 1, 7, 100} {
		checkDecode(t, marshal(t, richTraces(n, byte(n))))
	}
	checkDecode(t, marshal(t, manyResources(5, 20)))
	checkDecode(t, nil)

	// Rejected spans: the message names the first one's place.
	td := richTraces(6, 1)
	td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(1).SetTraceID(pcommon.TraceID{})
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetEndTimestamp(1)
	rec, err := otlp.DecodeProto(marshal(t, td))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Rejected != 2 || len(rec.Spans) != 4 || !strings.Contains(rec.Msg, "resourceSpans[0].scopeSpans[0].spans[1]: end time 1 ns") {
		t.Fatalf("rejected = %d, spans = %d, msg = %q; want 2, 4, the end time of resourceSpans[0].scopeSpans[0].spans[1]", rec.Rejected, len(rec.Spans), rec.Msg)
	}
	checkDecode(t, marshal(t, td))
}

// wire builds protobuf messages field by field.
type wire []byte

func (w wire) bytes(num protowire.Number, b []byte) wire {
	return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), b)
}
func (w wire) msg(num protowire.Number, m wire) wire { return w.bytes(num, m) }
func (w wire) str(num protowire.Number, s string) wire {
	return w.bytes(num, []byte(s))
}
func (w wire) varint(num protowire.Number, v uint64) wire {
	return protowire.AppendVarint(protowire.AppendTag(w, num, protowire.VarintType), v)
}
func (w wire) fixed64(num protowire.Number, v uint64) wire {
	return protowire.AppendFixed64(protowire.AppendTag(w, num, protowire.Fixed64Type), v)
}
func (w wire) fixed32(num protowire.Number, v uint32) wire {
	return protowire.AppendFixed32(protowire.AppendTag(w, num, protowire.Fixed32Type), v)
}
func (w wire) raw(b ...byte) wire { return append(w, b...) }

func strAttr(k, v string) wire { return wire{}.str(1, k).msg(2, wire{}.str(1, v)) }

func goodSpan(extra wire) wire {
	return wire{}.bytes(1, []byte("0123456789abcdef")).bytes(2, []byte("01234567")).str(5, "op").
		fixed64(7, 10).fixed64(8, 20).msg(9, strAttr("k", "v")).raw(extra...)
}

func request(rs ...wire) wire {
	var w wire
	for _, r := range rs {
		w = w.msg(1, r)
	}
	return w
}

// TestDecodeProto_Rules checks the wire's corners against pdata: fields
// out of order and repeated, the deprecated scope spans, unknown fields
// and groups, wrong wire types and lengths, nesting past the limit.
func TestDecodeProto_Rules(t *testing.T) {
	scopeSpans := wire{}.msg(1, wire{}.str(1, "lib").msg(3, strAttr("s", "1"))).msg(2, goodSpan(nil)).str(3, "url")
	resource := wire{}.msg(1, strAttr("service.name", "a"))
	nest := func(depth int) wire {
		v := wire{}.str(1, "leaf")
		for range depth {
			v = wire{}.msg(5, wire{}.msg(1, v)) // an array of one value
		}
		return wire{}.msg(9, wire{}.str(1, "deep").msg(2, v))
	}
	cases := map[string]wire{
		"ordered":              request(wire{}.msg(1, resource).msg(2, scopeSpans).str(3, "rs-url")),
		"resource last":        request(wire{}.msg(2, scopeSpans).str(3, "rs-url").msg(1, resource)),
		"two resources merge":  request(wire{}.msg(1, resource).msg(2, scopeSpans).msg(1, wire{}.msg(1, strAttr("x", "y")))),
		"deprecated only":      request(wire{}.msg(1, resource).msg(1000, scopeSpans)),
		"deprecated and new":   request(wire{}.msg(1000, scopeSpans).msg(2, wire{}.msg(2, goodSpan(wire{}.str(5, "new"))))),
		"bad deprecated":       request(wire{}.msg(2, scopeSpans).msg(1000, wire{}.msg(2, wire{}.raw(0x0a, 0x05)))),
		"scope after spans":    request(wire{}.msg(2, wire{}.msg(2, goodSpan(nil)).msg(1, wire{}.str(1, "late")).msg(1, wire{}.str(2, "v2")))),
		"two statuses merge":   request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(15, wire{}.varint(3, 2)).msg(15, wire{}.str(2, "m")))))),
		"status field 1":       request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(15, wire{}.varint(1, 2)))))),
		"code wraps":           request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(15, wire{}.varint(3, 1<<32|1)))))),
		"kind wraps":           request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.varint(6, 1<<32|3))))),
		"empty trace id":       request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.bytes(1, nil))))),
		"short trace id":       request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.bytes(1, []byte("abc")))))),
		"long span id":         request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.bytes(2, []byte("012345678")))))),
		"bad link span id":     request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(13, wire{}.bytes(2, []byte("0"))))))),
		"wrong wire type":      request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.varint(5, 1))))),
		"flags as varint":      request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.varint(16, 1))))),
		"flags":                request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.fixed32(16, 0x3ff))))),
		"unknown fields":       request(wire{}.varint(99, 1).msg(2, wire{}.fixed32(77, 1).msg(2, goodSpan(wire{}.fixed64(50, 1).str(51, "x"))))),
		"group":                request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.raw(0x9b, 0x06, 0x08, 0x01, 0x9c, 0x06))))),
		"end group alone":      request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.raw(0x9c, 0x06))))),
		"unended group":        request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.raw(0x9b, 0x06))))),
		"illegal wire type":    request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.raw(0x9e, 0x06, 0x00))))),
		"field 0":              wire{}.raw(0x02, 0x00),
		"field 2^32+1":         wire{}.raw(0x8a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00),
		"ten-byte varint":      request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.raw(0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))))),
		"eleven-byte varint":   request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.raw(0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))))),
		"truncated":            request(wire{}.msg(2, wire{}.msg(2, goodSpan(nil))))[:20],
		"length past end":      wire{}.raw(0x0a, 0x7f, 0x00),
		"nesting 97":           request(wire{}.msg(2, wire{}.msg(2, goodSpan(nest(48))))),
		"nesting past limit":   request(wire{}.msg(2, wire{}.msg(2, goodSpan(nest(60))))),
		"value merges":         request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(9, wire{}.str(1, "m").msg(2, wire{}.varint(3, 5)).msg(2, wire{}.varint(99, 1))))))),
		"value replaced":       request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(9, wire{}.str(1, "m").msg(2, wire{}.varint(3, 5)).msg(2, wire{}.varint(2, 1))))))),
		"string index":         request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(9, wire{}.str(1, "m").msg(2, wire{}.varint(8, 5))))))),
		"key index":            request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(9, wire{}.varint(3, 5).str(1, "m")))))),
		"entity refs":          request(wire{}.msg(1, wire{}.msg(3, wire{}.str(1, "u").str(2, "t").str(3, "a").str(4, "b"))).msg(2, scopeSpans)),
		"bad entity ref":       request(wire{}.msg(1, wire{}.msg(3, wire{}.varint(2, 1))).msg(2, scopeSpans)),
		"event time as varint": request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(11, wire{}.varint(1, 3)))))),
		"events and links":     request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(11, wire{}.fixed64(1, 3).str(2, "e").msg(3, strAttr("a", "b"))).msg(13, wire{}.bytes(1, []byte("fedcba9876543210")).fixed32(6, 0x301)).msg(11, nil))))),
		"mixed array":          request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(9, wire{}.str(1, "a").msg(2, wire{}.msg(5, wire{}.msg(1, wire{}.varint(3, 1)).msg(1, wire{}.varint(2, 1))))))))),
		"empty bytes":          request(wire{}.msg(2, wire{}.msg(2, goodSpan(wire{}.msg(9, wire{}.str(1, "b").msg(2, wire{}.bytes(7, nil))))))),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkDecode(t, data) })
	}
	// The cases that pdata refuses are refused: a test of the test.
	for _, name := range []string{"bad deprecated", "short trace id", "wrong wire type", "nesting past limit", "eleven-byte varint", "field 0", "bad entity ref"} {
		if _, err := otlp.DecodeProto(cases[name]); err == nil {
			t.Errorf("%s: DecodeProto took it; want an error", name)
		}
	}
}

// TestDecodeProto_Mutations changes a few bytes of rich and random
// requests, two thousand times (a byte replaced, inserted or deleted, the
// end cut off): each result is refused by both decoders or gives both
// the same records. It does what FuzzDecode does, deterministically.
func TestDecodeProto_Mutations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 22))
	seeds := [][]byte{marshal(t, richTraces(3, 1))}
	for range 8 {
		seeds = append(seeds, marshal(t, randomTraces(r)))
	}
	for i := range 2000 {
		b := append([]byte(nil), seeds[i%len(seeds)]...)
		for range 1 + r.IntN(4) {
			if len(b) == 0 {
				break
			}
			at := r.IntN(len(b))
			switch r.IntN(4) {
			case 0:
				b[at] = byte(r.Uint32())
			case 1:
				b = slices.Insert(b, at, byte(r.Uint32()))
			case 2:
				b = slices.Delete(b, at, at+1)
			case 3:
				b = b[:at]
			}
		}
		checkDecode(t, b)
	}
}

// FuzzDecode decodes any bytes both ways: DecodeProto never panics,
// refuses what pdata refuses and gives the records the pdata path gives.
// Seeds are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(marshal(f, richTraces(3, 1))))
	f.Add([]byte(marshal(f, randomTraces(rand.New(rand.NewPCG(1, 2))))))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
	})
}

// pubsubRequest is an OTLP protobuf request of n spans as an SDK sends
// them: traces of 5 spans, a notify with the pub/sub attributes and its
// phases with one attribute each.
func pubsubRequest(tb testing.TB, n int) []byte {
	td := ptrace.NewTraces()
	ss := pubsubScopeSpans(td)
	for i := range n {
		pubsubSpan(ss.Spans().AppendEmpty(), i, pcommon.Timestamp(1e18+i*1000), "")
	}
	return marshal(tb, td)
}

// pubsubScopeSpans adds to td the resource and scope of pubsubSpan's
// spans, and returns their scope spans.
func pubsubScopeSpans(td ptrace.Traces) ptrace.ScopeSpans {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "notifier")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lonelypsc")
	return ss
}

// pubsubSpan makes p the span i of traces of 5 spans, starting at start
// and lasting 3 ms: a notify with the pub/sub attributes (and the
// broadcaster, unless it is ""), then its phases with one attribute each.
func pubsubSpan(p ptrace.Span, i int, start pcommon.Timestamp, broadcaster string) {
	p.SetTraceID(pcommon.TraceID{1, byte(i / 5 >> 24), byte(i / 5 >> 16), byte(i / 5 >> 8), byte(i / 5), 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	p.SetSpanID(pcommon.SpanID{2, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 1, 1, 1})
	p.SetStartTimestamp(start)
	p.SetEndTimestamp(start + pcommon.Timestamp(3*time.Millisecond))
	p.SetFlags(0x101)
	if i%5 == 0 {
		p.SetName("notify")
		p.SetKind(ptrace.SpanKindProducer)
		a := p.Attributes()
		a.PutStr("messaging.operation.name", "notify")
		a.PutStr("messaging.destination.name", fmt.Sprintf("orders/%d", i%50))
		a.PutInt("messaging.message.body.size", int64(i%4096))
		a.PutInt("lonelytrace.subscribers", 3)
		if broadcaster != "" {
			a.PutStr("lonelytrace.broadcaster", broadcaster)
		}
		return
	}
	p.SetName("send request")
	p.SetParentSpanID(pcommon.SpanID{2, byte((i - i%5) >> 24), byte((i - i%5) >> 16), byte((i - i%5) >> 8), byte(i - i%5), 1, 1, 1})
	p.Attributes().PutInt("http.response.status_code", 200)
}

// BenchmarkDecode decodes a 512-span request into records: protobuf
// directly and through pdata, and JSON through pdata, whole and without
// the conversion to records (json-pdata-only), which is what a direct
// JSON decoder could at most save.
//
//	go test ./internal/otlp -run XXX -bench Decode -benchmem -count 6
func BenchmarkDecode(b *testing.B) {
	data := pubsubRequest(b, 512)
	td, err := otlp.UnmarshalProto(data)
	if err != nil {
		b.Fatal(err)
	}
	jsonData, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	viaJSON := func([]byte) (otlp.Records, error) {
		td, err := otlp.UnmarshalJSON(jsonData)
		return otlp.RecordsOf(td), err
	}
	jsonOnly := func([]byte) (otlp.Records, error) {
		td, err := otlp.UnmarshalJSON(jsonData)
		return otlp.Records{Spans: make([]schema.Span, td.SpanCount())}, err
	}
	for _, c := range []struct {
		name   string
		decode func([]byte) (otlp.Records, error)
	}{{"direct", otlp.DecodeProto}, {"pdata", viaPdata}, {"json-pdata", viaJSON}, {"json-pdata-only", jsonOnly}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				rec, err := c.decode(data)
				if err != nil || len(rec.Spans) != 512 {
					b.Fatalf("%d spans, %v; want 512", len(rec.Spans), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
		})
	}
}

// TestReadFileRecords_MatchesReadFile reads protobuf files, one request
// and a length-prefixed stream, both ways: ReadFileRecords must hand on
// the batches, lines and records that ReadFile and RecordsOf give,
// rejection messages included.
func TestReadFileRecords_MatchesReadFile(t *testing.T) {
	dir := t.TempDir()
	reqs := []ptrace.Traces{manyResources(90, 100), richTraces(50, 3), manyResources(3, 2000)}
	reqs[0].ResourceSpans().At(7).ScopeSpans().At(0).Spans().At(3).SetStartTimestamp(0)
	reqs[2].ResourceSpans().At(2).ScopeSpans().At(0).Spans().At(1).SetSpanID(pcommon.SpanID{})
	one := filepath.Join(dir, "one.pb")
	stream := filepath.Join(dir, "stream.binpb")
	if err := os.WriteFile(one, marshal(t, reqs[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, td := range reqs {
		b := marshal(t, td)
		all = binary.BigEndian.AppendUint32(all, uint32(len(b)))
		all = append(all, b...)
	}
	if err := os.WriteFile(stream, all, 0o644); err != nil {
		t.Fatal(err)
	}
	type batch struct {
		rec  otlp.Records
		line int
	}
	for _, path := range []string{one, stream} {
		var want, got []batch
		if err := otlp.ReadFile(path, func(td ptrace.Traces, line int) error {
			want = append(want, batch{otlp.RecordsOf(td), line})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := otlp.ReadFileRecords(path, nil, func(rec otlp.Records, line int) error {
			got = append(got, batch{rec, line})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || len(want) < 2 {
			t.Fatalf("%s: %d batches; want %d (and at least 2)", path, len(got), len(want))
		}
		rejected := 0
		for i := range want {
			if got[i].line != want[i].line || !sameRecords(got[i].rec, want[i].rec) {
				t.Fatalf("%s: batch %d: line %d, %d spans, %d rejected (%q); want line %d, %d, %d (%q)", path, i,
					got[i].line, len(got[i].rec.Spans), got[i].rec.Rejected, got[i].rec.Msg,
					want[i].line, len(want[i].rec.Spans), want[i].rec.Rejected, want[i].rec.Msg)
			}
			rejected += want[i].rec.Rejected
		}
		if want := map[string]int{one: 1, stream: 2}[path]; rejected != want {
			t.Errorf("%s: %d rejected; want %d", path, rejected, want)
		}
	}
}

// dumpFile returns the rows of the tables a span's write fills, in id
// order, each value as SQLite returns it.
func dumpFile(tb testing.TB, path string) []string {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, table := range []string{schema.TracesTable, schema.SpansTable, schema.ResourcesTable, schema.ScopesTable, schema.AttributeKeysTable} {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			tb.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %#v", table, vals))
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// TestDecodeProto_SameFile stores requests through the pdata path
// (Store) and through DecodeProto and ExportRecords into two files:
// every row of every table a span fills is the same, byte for byte; and
// the direct file gives the input back as TestRoundTrip does.
func TestDecodeProto_SameFile(t *testing.T) {
	ctx := context.Background()
	var reqs []ptrace.Traces
	reqs = append(reqs, richTraces(60, 1), manyResources(4, 30))
	for seed := range uint64(20) {
		td := randomTraces(rand.New(rand.NewPCG(seed, 7)))
		// Times within a day of each other, so that retention keeps every
		// span; the invalid ones stay invalid.
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, p := range ss.Spans().All() {
					start, end := uint64(p.StartTimestamp()), uint64(p.EndTimestamp())
					if start == 0 {
						continue
					}
					newStart := 1_700_000_000_000_000_000 + start%(24*3600*1e9)
					p.SetStartTimestamp(pcommon.Timestamp(newStart))
					if end >= start {
						p.SetEndTimestamp(pcommon.Timestamp(newStart + (end-start)%1e9))
					} else {
						p.SetEndTimestamp(pcommon.Timestamp(newStart - 1))
					}
				}
			}
		}
		reqs = append(reqs, td)
	}
	viaPdataPath, direct := tempDB(t), tempDB(t)
	pe, de := mustExporter(t, viaPdataPath), mustExporter(t, direct)
	for i, td := range reqs {
		if _, _, _, err := otlp.Store(ctx, pe, td, otlp.Wait); err != nil {
			t.Fatalf("request %d: Store: %v", i, err)
		}
		rec, err := otlp.DecodeProto(marshal(t, td))
		if err != nil {
			t.Fatalf("request %d: DecodeProto: %v", i, err)
		}
		if len(rec.Spans) > 0 {
			if err := de.ExportRecords(ctx, rec.Spans); err != nil {
				t.Fatalf("request %d: ExportRecords: %v", i, err)
			}
		}
	}
	for _, e := range []*exporter.Exporter{pe, de} {
		if err := e.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want, got := dumpFile(t, viaPdataPath), dumpFile(t, direct)
	if len(want) < 100 {
		t.Fatalf("the pdata path's file has %d rows; want a test with more: %q", len(want), want)
	}
	otlptest.DiffLines(t, got, want)

	// The direct path alone gives the input back, as TestRoundTrip
	// checks the pdata path.
	in := richTraces(60, 1)
	path := tempDB(t)
	e := mustExporter(t, path)
	rec, err := otlp.DecodeProto(marshal(t, in))
	if err != nil || len(rec.Spans) != 60 {
		t.Fatalf("DecodeProto = %d spans, %v; want 60", len(rec.Spans), err)
	}
	if err := e.ExportRecords(ctx, rec.Spans); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	otlptest.DiffLines(t, otlptest.SpanLines(t, otlp.Traces(readAll(t, path))), otlptest.SpanLines(t, in))
}

// TestDecodeProto_RejectedCostLittle decodes a request of 100,000 empty
// spans, two bytes each: all rejected, and the decoding allocates a few
// times the request, not room for 100,000 spans (236 times it).
func TestDecodeProto_RejectedCostLittle(t *testing.T) {
	var spans wire
	for range 100_000 {
		spans = spans.msg(2, nil)
	}
	data := request(wire{}.msg(2, spans))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rec, err := otlp.DecodeProto(data)
	runtime.ReadMemStats(&after)
	if err != nil || len(rec.Spans) != 0 || rec.Rejected != 100_000 {
		t.Fatalf("DecodeProto = %d spans, %d rejected, %v; want 0, 100000, nil", len(rec.Spans), rec.Rejected, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 20*uint64(len(data)) {
		t.Errorf("allocated %d bytes for a request of %d; want at most 20 times it", n, len(data))
	}
}

// TestDecodeProtoInto_Reuses decodes random requests one after another
// into the same array, as collect does: each time the records are
// DecodeProto's, whatever the array held before, and the array's room is
// used whenever it is enough.
func TestDecodeProtoInto_Reuses(t *testing.T) {
	var spans []schema.Span
	reused := 0
	for seed := range uint64(120) {
		r := rand.New(rand.NewPCG(seed, 23))
		data := marshal(t, randomTraces(r))
		if seed%10 == 0 {
			data = marshal(t, richTraces(int(seed), byte(seed)))
		}
		want, err := otlp.DecodeProto(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := otlp.DecodeProtoInto(data, spans)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Spans) == 0 && len(got.Spans) == 0 {
			want.Spans, got.Spans = nil, nil // empty either way
		}
		if !sameRecords(got, want) {
			t.Fatalf("seed %d: the records decoded into a used array differ from DecodeProto's:\ngot  %+v\nwant %+v", seed, got, want)
		}
		// The room needed is for every span of the request, those it
		// rejects too.
		if n := len(got.Spans) + got.Rejected; len(got.Spans) > 0 && cap(spans) >= n {
			if &got.Spans[0] != &spans[:1][0] {
				t.Fatalf("seed %d: %d spans did not go into the array's room for %d", seed, n, cap(spans))
			}
			reused++
		}
		if cap(got.Spans) > cap(spans) {
			spans = got.Spans
		}
	}
	if reused < 50 {
		t.Fatalf("reused the array %d times of 120; want most", reused)
	}
}
