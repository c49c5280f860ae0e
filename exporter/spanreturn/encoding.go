package spanreturn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Wire format, version 1. All integers are unsigned varints (uv) or
// zigzag signed varints (sv) as in encoding/binary; times are Unix
// nanoseconds of the server's clock.
//
//	byte    version (1)
//	byte    flags: bit 0 truncated
//	[16]    trace id
//	uv      t1, request received
//	uv      t2 - t1, response sent
//	uv      spans left out by the size bound
//	uv      span count
//	attrs   resource (service identity only, see resourceKept)
//	span*   oldest first, the request's server span first
//
//	span:   [8] id, [8] parent id (zero: none), byte bits (0-2 kind,
//	        3-4 status code, 5 parent is remote), str scope name,
//	        str scope version, str name, sv start - t1, uv end - start,
//	        str status description, attrs, uv event count,
//	        event* (str name, sv time - start, attrs)
//	attrs:  uv count, (str key, byte type, value)*
//	str:    uv 0 then uv length and bytes (a new string, appended to the
//	        table), or uv i > 0: the table's string i-1. The table starts
//	        with "" and so holds each distinct string once.
//
// The header carries this base64url-encoded without padding.
// docs/design.md#span-return-wire-format specifies it in full, with a
// worked example.
const wireVersion = 1

const (
	flagTruncated = 1 << 0
	bitRemote     = 1 << 5
	// prefixMax is the largest size of everything before the resource.
	prefixMax = 2 + 16 + 4*binary.MaxVarintLen64
	// maxAttrs and maxEvents bound what the decoder accepts per span (and
	// per event), maxDepth the nesting of slice and map values.
	maxAttrs  = 256
	maxEvents = 256
	maxDepth  = 4
)

// Attribute value types on the wire; fixed here, not taken from the
// attribute package's order.
const (
	wireBool byte = iota + 1
	wireInt64
	wireFloat64
	wireString
	wireBoolSlice
	wireInt64Slice
	wireFloat64Slice
	wireStringSlice
	wireBytes
	wireSlice
	wireMap
)

// errMalformed and errTooMany are the decoder's two ways to fail; the
// receiver counts them as ReasonMalformed and ReasonTooMany.
var (
	errMalformed = errors.New("malformed span return")
	errTooMany   = errors.New("too many spans")
)

// rawLimit is the largest binary encoding whose base64url form fits in
// maxBytes.
func rawLimit(maxBytes int) int { return maxBytes / 4 * 3 }

// resourceKept says which resource attributes travel: the service's
// identity, not its whole environment, so every answer stays small.
func resourceKept(k attribute.Key) bool {
	s := string(k)
	return strings.HasPrefix(s, "service.") || strings.HasPrefix(s, "deployment.") || s == "host.name"
}

// encoder writes one answer. Its string table can be rolled back when a
// span does not fit.
type encoder struct {
	buf   []byte
	table map[string]int
	added []string
}

func (e *encoder) uv(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) sv(v int64)  { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) str(s string) {
	if i, ok := e.table[s]; ok {
		e.uv(uint64(i) + 1)
		return
	}
	e.table[s] = len(e.table)
	e.added = append(e.added, s)
	e.uv(0)
	e.uv(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// mark and rollback undo everything written since mark.
func (e *encoder) mark() (int, int) { return len(e.buf), len(e.added) }

func (e *encoder) rollback(n, added int) {
	e.buf = e.buf[:n]
	for _, s := range e.added[added:] {
		delete(e.table, s)
	}
	e.added = e.added[:added]
}

func (e *encoder) attrs(kvs []attribute.KeyValue, keep func(attribute.Key) bool) {
	n := 0
	for _, kv := range kvs {
		if keep(kv.Key) && encodable(kv.Value, 0) {
			n++
		}
	}
	n = min(n, maxAttrs)
	e.uv(uint64(n))
	for _, kv := range kvs {
		if n == 0 || !keep(kv.Key) || !encodable(kv.Value, 0) {
			continue
		}
		e.str(string(kv.Key))
		e.value(kv.Value)
		n--
	}
}

func keepAll(attribute.Key) bool { return true }

func encodable(v attribute.Value, depth int) bool {
	switch v.Type() {
	case attribute.BOOL, attribute.INT64, attribute.FLOAT64, attribute.STRING,
		attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE,
		attribute.STRINGSLICE, attribute.BYTESLICE:
		return true
	case attribute.SLICE:
		return depth < maxDepth && !slices.ContainsFunc(v.AsSlice(), func(x attribute.Value) bool { return !encodable(x, depth+1) })
	case attribute.MAP:
		return depth < maxDepth && !slices.ContainsFunc(v.AsMap(), func(x attribute.KeyValue) bool { return !encodable(x.Value, depth+1) })
	}
	return false
}

func (e *encoder) value(v attribute.Value) {
	switch v.Type() {
	case attribute.BOOL:
		e.buf = append(e.buf, wireBool, b2u(v.AsBool()))
	case attribute.INT64:
		e.buf = append(e.buf, wireInt64)
		e.sv(v.AsInt64())
	case attribute.FLOAT64:
		e.buf = append(e.buf, wireFloat64)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		e.buf = append(e.buf, wireString)
		e.str(v.AsString())
	case attribute.BOOLSLICE:
		e.buf = append(e.buf, wireBoolSlice)
		s := v.AsBoolSlice()
		e.uv(uint64(len(s)))
		for _, b := range s {
			e.buf = append(e.buf, b2u(b))
		}
	case attribute.INT64SLICE:
		e.buf = append(e.buf, wireInt64Slice)
		s := v.AsInt64Slice()
		e.uv(uint64(len(s)))
		for _, x := range s {
			e.sv(x)
		}
	case attribute.FLOAT64SLICE:
		e.buf = append(e.buf, wireFloat64Slice)
		s := v.AsFloat64Slice()
		e.uv(uint64(len(s)))
		for _, x := range s {
			e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(x))
		}
	case attribute.STRINGSLICE:
		e.buf = append(e.buf, wireStringSlice)
		s := v.AsStringSlice()
		e.uv(uint64(len(s)))
		for _, x := range s {
			e.str(x)
		}
	case attribute.BYTESLICE:
		e.buf = append(e.buf, wireBytes)
		b := v.AsByteSlice()
		e.uv(uint64(len(b)))
		e.buf = append(e.buf, b...)
	case attribute.SLICE:
		e.buf = append(e.buf, wireSlice)
		s := v.AsSlice()
		e.uv(uint64(len(s)))
		for _, x := range s {
			e.value(x)
		}
	case attribute.MAP:
		e.buf = append(e.buf, wireMap)
		e.attrs(v.AsMap(), keepAll)
	}
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// orderSpans puts root first and the others oldest first, so that a cut
// at any point keeps, for every span kept, the parent that started before
// it.
func orderSpans(root trace.SpanID, spans []sdktrace.ReadOnlySpan) {
	slices.SortStableFunc(spans, func(a, b sdktrace.ReadOnlySpan) int {
		ar, br := a.SpanContext().SpanID() == root, b.SpanContext().SpanID() == root
		switch {
		case ar && !br:
			return -1
		case br && !ar:
			return 1
		}
		if c := a.StartTime().Compare(b.StartTime()); c != 0 {
			return c
		}
		return a.EndTime().Compare(b.EndTime())
	})
}

// encode writes spans (already in order) of trace tid, received at t1 and
// answered at t2 on the server's clock, within rawMax bytes and maxSpans
// spans. A span that has not ended is written as ending at t2. It returns
// the encoding and how many spans, from the front, it holds.
func encode(tid trace.TraceID, t1, t2 time.Time, res []attribute.KeyValue, spans []sdktrace.ReadOnlySpan, rawMax, maxSpans int) ([]byte, int) {
	e := encoder{table: map[string]int{"": 0}, buf: make([]byte, 0, 512)}
	e.attrs(res, resourceKept)
	if len(e.buf)+prefixMax > rawMax {
		// An oversized identity is sent without: the spans matter more.
		e = encoder{table: map[string]int{"": 0}, buf: make([]byte, 0, 512)}
		e.uv(0)
	}
	kept := 0
	for _, s := range spans {
		if kept == maxSpans {
			break
		}
		n, a := e.mark()
		e.span(s, t1, t2)
		if len(e.buf)+prefixMax > rawMax {
			e.rollback(n, a)
			break
		}
		kept++
	}
	out := make([]byte, 0, prefixMax+len(e.buf))
	var flags byte
	if kept < len(spans) {
		flags |= flagTruncated
	}
	out = append(out, wireVersion, flags)
	out = append(out, tid[:]...)
	out = binary.AppendUvarint(out, uint64(max(t1.UnixNano(), 0)))
	out = binary.AppendUvarint(out, uint64(max(t2.Sub(t1), 0)))
	out = binary.AppendUvarint(out, uint64(len(spans)-kept))
	out = binary.AppendUvarint(out, uint64(kept))
	return append(out, e.buf...), kept
}

func (e *encoder) span(s sdktrace.ReadOnlySpan, t1, t2 time.Time) {
	sc, p := s.SpanContext(), s.Parent()
	id, pid := sc.SpanID(), p.SpanID()
	e.buf = append(e.buf, id[:]...)
	e.buf = append(e.buf, pid[:]...)
	st := s.Status()
	bits := byte(s.SpanKind()&7) | byte(st.Code&3)<<3
	if p.IsRemote() {
		bits |= bitRemote
	}
	e.buf = append(e.buf, bits)
	sc2 := s.InstrumentationScope()
	e.str(sc2.Name)
	e.str(sc2.Version)
	e.str(s.Name())
	start, end := s.StartTime(), s.EndTime()
	if end.IsZero() {
		end = t2
	}
	e.sv(int64(start.Sub(t1)))
	e.uv(uint64(max(end.Sub(start), 0)))
	desc := ""
	if st.Code == codes.Error {
		desc = st.Description
	}
	e.str(desc)
	e.attrs(s.Attributes(), keepAll)
	ev := s.Events()
	ev = ev[:min(len(ev), maxEvents)]
	e.uv(uint64(len(ev)))
	for _, x := range ev {
		e.str(x.Name)
		e.sv(int64(x.Time.Sub(start)))
		e.attrs(x.Attributes, keepAll)
	}
}

// wireSpan and wireEvent are a span as decoded, times on the server's
// clock in Unix nanoseconds.
type wireSpan struct {
	id, parent   trace.SpanID
	parentRemote bool
	kind         trace.SpanKind
	code         codes.Code
	desc         string
	scope, ver   string
	name         string
	start, end   int64
	attrs        []attribute.KeyValue
	events       []wireEvent
}

type wireEvent struct {
	name  string
	time  int64
	attrs []attribute.KeyValue
}

// answer is one decoded answer.
type answer struct {
	traceID   trace.TraceID
	t1, t2    int64
	truncated bool
	omitted   uint64
	resource  []attribute.KeyValue
	spans     []wireSpan
}

// decoder reads one answer; every count is checked against the bytes left
// before anything is allocated for it, so a hostile input costs at most
// its own length.
type decoder struct {
	b     []byte
	table []string
	err   error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("short input")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) fixed(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("short input")
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) sv() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items of at least minSize bytes each.
func (d *decoder) count(limit, minSize int) int {
	n := d.uv()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) {
		d.fail("count %d over limit %d", n, limit)
		return 0
	}
	if n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("count %d over the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	x := d.uv()
	if d.err != nil {
		return ""
	}
	if x > 0 {
		if x-1 >= uint64(len(d.table)) {
			d.fail("string %d not in table of %d", x-1, len(d.table))
			return ""
		}
		return d.table[x-1]
	}
	n := d.uv()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("string of %d bytes, %d left", n, len(d.b))
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	d.table = append(d.table, s)
	return s
}

func (d *decoder) attrs(depth int) []attribute.KeyValue {
	n := d.count(maxAttrs, 3)
	if n == 0 {
		return nil
	}
	kvs := make([]attribute.KeyValue, 0, n)
	for range n {
		k := d.str()
		v := d.value(depth)
		if d.err != nil {
			return nil
		}
		if k == "" {
			d.fail("empty attribute key")
			return nil
		}
		kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(k), Value: v})
	}
	return kvs
}

func (d *decoder) value(depth int) attribute.Value {
	switch t := d.byte1(); t {
	case wireBool:
		return attribute.BoolValue(d.bool1())
	case wireInt64:
		return attribute.Int64Value(d.sv())
	case wireFloat64:
		return attribute.Float64Value(math.Float64frombits(binary.LittleEndian.Uint64(d.fixed(8))))
	case wireString:
		return attribute.StringValue(d.str())
	case wireBoolSlice:
		s := make([]bool, d.count(len(d.b), 1))
		for i := range s {
			s[i] = d.bool1()
		}
		return attribute.BoolSliceValue(s)
	case wireInt64Slice:
		s := make([]int64, d.count(len(d.b), 1))
		for i := range s {
			s[i] = d.sv()
		}
		return attribute.Int64SliceValue(s)
	case wireFloat64Slice:
		s := make([]float64, d.count(len(d.b), 8))
		for i := range s {
			s[i] = math.Float64frombits(binary.LittleEndian.Uint64(d.fixed(8)))
		}
		return attribute.Float64SliceValue(s)
	case wireStringSlice:
		s := make([]string, d.count(len(d.b), 1))
		for i := range s {
			s[i] = d.str()
		}
		return attribute.StringSliceValue(s)
	case wireBytes:
		n := d.count(len(d.b), 1)
		return attribute.ByteSliceValue(slices.Clone(d.fixed(n)))
	case wireSlice:
		if depth >= maxDepth {
			d.fail("values nested deeper than %d", maxDepth)
			return attribute.Value{}
		}
		s := make([]attribute.Value, d.count(len(d.b), 2))
		for i := range s {
			s[i] = d.value(depth + 1)
		}
		return attribute.SliceValue(s...)
	case wireMap:
		if depth >= maxDepth {
			d.fail("values nested deeper than %d", maxDepth)
			return attribute.Value{}
		}
		return attribute.MapValue(d.attrs(depth + 1)...)
	default:
		d.fail("attribute type %d", t)
		return attribute.Value{}
	}
}

func (d *decoder) bool1() bool {
	switch d.byte1() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

// addTime returns base+delta, failing instead of overflowing.
func (d *decoder) addTime(base, delta int64) int64 {
	s := base + delta
	if (delta > 0 && s < base) || (delta < 0 && s > base) || s < 0 {
		d.fail("time out of range")
		return 0
	}
	return s
}

// decode parses one answer, accepting at most maxSpans spans.
func decode(b []byte, maxSpans int) (answer, error) {
	d := decoder{b: b, table: []string{""}}
	var a answer
	if v := d.byte1(); d.err == nil && v != wireVersion {
		d.fail("version %d", v)
	}
	flags := d.byte1()
	if flags&^flagTruncated != 0 {
		d.fail("unknown flags %#x", flags)
	}
	a.truncated = flags&flagTruncated != 0
	copy(a.traceID[:], d.fixed(16))
	t1, dt := d.uv(), d.uv()
	if d.err == nil && (t1 > math.MaxInt64 || dt > math.MaxInt64) {
		d.fail("time out of range")
	}
	a.t1 = int64(t1)
	a.t2 = d.addTime(a.t1, int64(dt))
	a.omitted = d.uv()
	ns := d.uv()
	if d.err == nil && ns > uint64(maxSpans) {
		return answer{}, fmt.Errorf("%w: %d spans, limit %d", errTooMany, ns, maxSpans)
	}
	// 16 id bytes, bits, 3 strings, 2 times, desc, 2 counts: 25 bytes.
	if d.err == nil && ns*25 > uint64(len(d.b)) {
		d.fail("%d spans in %d bytes", ns, len(d.b))
	}
	a.resource = d.attrs(0)
	if d.err != nil {
		return answer{}, d.err
	}
	a.spans = make([]wireSpan, 0, ns)
	for range ns {
		var s wireSpan
		copy(s.id[:], d.fixed(8))
		copy(s.parent[:], d.fixed(8))
		bits := d.byte1()
		if bits&^(7|3<<3|bitRemote) != 0 || bits&7 > byte(trace.SpanKindConsumer) {
			d.fail("bad span bits %#x", bits)
		}
		s.kind = trace.SpanKind(bits & 7)
		s.code = codes.Code(bits >> 3 & 3)
		s.parentRemote = bits&bitRemote != 0
		s.scope, s.ver, s.name = d.str(), d.str(), d.str()
		s.start = d.addTime(a.t1, d.sv())
		dur := d.uv()
		if d.err == nil && dur > math.MaxInt64 {
			d.fail("duration out of range")
		}
		s.end = d.addTime(s.start, int64(dur))
		s.desc = d.str()
		s.attrs = d.attrs(0)
		ne := d.count(maxEvents, 3)
		for range ne {
			var ev wireEvent
			ev.name = d.str()
			ev.time = d.addTime(s.start, d.sv())
			ev.attrs = d.attrs(0)
			s.events = append(s.events, ev)
		}
		if d.err != nil {
			return answer{}, d.err
		}
		a.spans = append(a.spans, s)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return answer{}, d.err
	}
	return a, nil
}
