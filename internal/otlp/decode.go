package otlp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Records are the spans of OTLP traces as the file stores them, with
// those left out for an invalid id or time (Spans says which).
type Records struct {
	Spans []schema.Span
	// Rejected counts the spans left out; Msg says how many, with the
	// first one's place and reason (an OTLP partial success's
	// error_message), or is "" when none was.
	Rejected int
	Msg      string
}

// RecordsOf converts td as Spans does.
func RecordsOf(td ptrace.Traces) Records {
	spans, rejected, msg := Spans(td)
	return Records{Spans: spans, Rejected: rejected, Msg: msg}
}

// DecodeProto decodes an OTLP protobuf ExportTraceServiceRequest straight
// into the spans the file stores, with no pdata objects between: the
// records are those of RecordsOf(UnmarshalProto(data)), field for field,
// and data is refused exactly when pdata refuses it (docs/design.md,
// "OTLP straight to rows"). The strings of the records are pieces of one
// copy of data, so data may be reused once DecodeProto returns.
func DecodeProto(data []byte) (Records, error) { return DecodeProtoInto(data, nil) }

// DecodeProtoInto is DecodeProto with the spans decoded into the array of
// spans when it has the room for them, so that a receiver can decode
// request after request into the same memory rather than give the
// garbage collector a fresh array of a few hundred kilobytes each time.
// The records then share that array: whoever had the records decoded
// into it before must be done with them.
func DecodeProtoInto(data []byte, spans []schema.Span) (Records, error) {
	var d decoder
	d.reset(data, 0)
	// An array with room for as many spans as data could hold is used
	// as it is; any other is used if it has room for the spans counted.
	if cap(spans) < len(data)/minValidSpan+1 {
		if n := d.spanRoom(0, len(data)); cap(spans) < n {
			spans = make([]schema.Span, 0, n)
		}
	}
	d.out = spans[:0]
	if err := d.request(0, len(data)); err != nil {
		return Records{}, err
	}
	return d.records(), nil
}

// The decoder follows pdata's generated UnmarshalProto (pdata v1.71)
// rule for rule, since the records must be the ones the pdata path
// gives and a request pdata refuses must be refused here too: a known
// field of the wrong wire type is an error; unknown fields, groups
// included, are skipped as pdata's ConsumeUnknown skips them; a repeated
// occurrence of a message field (a span's status, a resource) merges
// into the first, of a scalar replaces it; ids are 0 or their length
// bytes long; attribute values nest at most recursionLimit deep.
// OTLP's field numbers are those of opentelemetry-proto's
// collector/trace/v1 and trace/v1 messages.

// recursionLimit is pdata's bound on the nesting of KeyValue, AnyValue,
// ArrayValue and KeyValueList messages.
const recursionLimit = 100

// The errors pdata's decoder gives, with its words.
var (
	errIntOverflow          = errors.New("proto: integer overflow")
	errInvalidLength        = errors.New("proto: negative length found during unmarshaling")
	errRecursionDepth       = errors.New("proto: exceeded max recursion depth")
	errUnexpectedEndOfGroup = errors.New("proto: unexpected end of group")
	errTraceIDLength        = errors.New("unmarshal: invalid TraceID length")
	errSpanIDLength         = errors.New("unmarshal: invalid SpanID length")
)

// Wire types.
const (
	wireVarint     = 0
	wireI64        = 1
	wireLen        = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireI32        = 5
)

// rng is a byte range of the request.
type rng struct{ from, to int }

// decoder holds one request's decoding state. Its scratch slices are
// reused from message to message; what the records keep is copied out
// of them.
type decoder struct {
	b []byte
	// s is b as one string: every string of the records is a piece of it,
	// one allocation for the whole request.
	s string

	out      []schema.Span
	rejected int
	first    string
	// rsBase is added to the index of a resourceSpans in messages: the
	// number of resourceSpans before it in the batch (files.go).
	rsBase int

	// kvs is room for the attributes of spans, handed out in pieces so
	// that spans do not each allocate theirs.
	kvs []attribute.KeyValue
	// kvStack and valStack hold the members of the maps and arrays under
	// way, nested ones above their parents'.
	kvStack  []attribute.KeyValue
	valStack []attribute.Value
}

// reset starts a batch of records, from data.
func (d *decoder) reset(data []byte, rsBase int) {
	d.input(data)
	d.out, d.rejected, d.first, d.rsBase = nil, 0, "", rsBase
}

// input has the decoder read data next, copied once into a string.
func (d *decoder) input(data []byte) {
	d.b, d.s = data, string(data)
}

func (d *decoder) records() Records {
	r := Records{Spans: d.out, Rejected: d.rejected}
	if d.rejected > 0 {
		r.Msg = fmt.Sprintf("%d %s rejected; the first: %s", d.rejected, plural(d.rejected, "span", "spans"), d.first)
	}
	return r
}

// varint reads a varint at pos as pdata does: at most ten bytes, the
// bits past 64 dropped. One byte, the most common, is read inline.
func (d *decoder) varint(pos, end int) (uint64, int, error) {
	if pos < end && d.b[pos] < 0x80 {
		return uint64(d.b[pos]), pos + 1, nil
	}
	return d.varintLong(pos, end)
}

func (d *decoder) varintLong(pos, end int) (uint64, int, error) {
	var n uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, 0, errIntOverflow
		}
		if pos >= end {
			return 0, 0, io.ErrUnexpectedEOF
		}
		c := d.b[pos]
		pos++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return n, pos, nil
		}
	}
}

// tag reads a field's tag. The field number is pdata's int32 of it, so
// that a number past 2^31 reads as the same field pdata reads.
func (d *decoder) tag(pos, end int) (int32, int, int, error) {
	if pos < end && d.b[pos] < 0x80 && d.b[pos] >= 8 {
		return int32(d.b[pos] >> 3), int(d.b[pos] & 7), pos + 1, nil
	}
	t, next, err := d.varintLong(pos, end)
	if err != nil {
		return 0, 0, 0, err
	}
	field := int32(t >> 3)
	if field <= 0 {
		return 0, 0, 0, fmt.Errorf("proto: illegal field=%d (tag=%d, pos=%d)", field, t, next)
	}
	return field, int(t & 7), next, nil
}

// length reads a length-delimited field's length and returns its range.
func (d *decoder) length(pos, end int) (rng, int, error) {
	n, pos, err := d.varint(pos, end)
	if err != nil {
		return rng{}, 0, err
	}
	l := int(n)
	if l < 0 {
		return rng{}, 0, errInvalidLength
	}
	to := pos + l
	if to < 0 || to > end {
		return rng{}, 0, io.ErrUnexpectedEOF
	}
	return rng{pos, to}, to, nil
}

func (d *decoder) fixed64(pos, end int) (uint64, int, error) {
	if pos+8 > end || pos+8 < 0 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return binary.LittleEndian.Uint64(d.b[pos:]), pos + 8, nil
}

func (d *decoder) fixed32(pos, end int) (uint32, int, error) {
	if pos+4 > end || pos+4 < 0 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return binary.LittleEndian.Uint32(d.b[pos:]), pos + 4, nil
}

// skip reads past an unknown field's value as pdata's ConsumeUnknown
// does, a group's fields and all.
func (d *decoder) skip(pos, end, wt int) (int, error) {
	var err error
	depth := 0
	for pos < end {
		switch wt {
		case wireVarint:
			_, pos, err = d.varint(pos, end)
			return pos, err
		case wireI64:
			_, pos, err = d.fixed64(pos, end)
			return pos, err
		case wireLen:
			_, pos, err = d.length(pos, end)
			return pos, err
		case wireStartGroup:
			depth++
		case wireEndGroup:
			if depth == 0 {
				return 0, errUnexpectedEndOfGroup
			}
			depth--
		case wireI32:
			_, pos, err = d.fixed32(pos, end)
			return pos, err
		default:
			return 0, fmt.Errorf("proto: illegal wireType %d", wt)
		}
		if depth == 0 {
			return pos, nil
		}
		_, wt, pos, err = d.tag(pos, end)
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrUnexpectedEOF
}

func wrongWire(wt int, field string) error {
	return fmt.Errorf("proto: wrong wireType = %d for field %s", wt, field)
}

// fieldValue is a field read by next: a known field's range
// (length-delimited) or number (the other wire types); known is false
// for a field the message does not know, which next has skipped.
type fieldValue struct {
	num   int32
	r     rng
	n     uint64
	known bool
}

// message is the known fields of a message: wire[n] is the wire type of
// field n, or -1; name[n] its name in pdata's errors. Field 1000 is
// known only to resourceSpans (its deprecated scope spans).
type message struct {
	wire    [17]int8
	name    [17]string
	has1000 bool
}

type field struct {
	num  int32
	wire int8
	name string
}

func newMessage(fields ...field) *message {
	m := &message{}
	for i := range m.wire {
		m.wire[i] = -1
	}
	for _, f := range fields {
		if f.num == 1000 {
			m.has1000 = true
			continue
		}
		m.wire[f.num], m.name[f.num] = f.wire, f.name
	}
	return m
}

// The known fields of each message, by its number in
// opentelemetry-proto, named as pdata's errors name them.
var (
	requestMsg       = newMessage(field{1, wireLen, "ResourceSpans"})
	resourceSpansMsg = newMessage(field{1, wireLen, "Resource"}, field{2, wireLen, "ScopeSpans"}, field{3, wireLen, "SchemaUrl"}, field{1000, wireLen, "DeprecatedScopeSpans"})
	resourceMsg      = newMessage(field{1, wireLen, "Attributes"}, field{2, wireVarint, "DroppedAttributesCount"}, field{3, wireLen, "EntityRefs"})
	entityRefMsg     = newMessage(field{1, wireLen, "SchemaUrl"}, field{2, wireLen, "Type"}, field{3, wireLen, "IdKeys"}, field{4, wireLen, "DescriptionKeys"})
	scopeSpansMsg    = newMessage(field{1, wireLen, "Scope"}, field{2, wireLen, "Spans"}, field{3, wireLen, "SchemaUrl"})
	scopeMsg         = newMessage(field{1, wireLen, "Name"}, field{2, wireLen, "Version"}, field{3, wireLen, "Attributes"}, field{4, wireVarint, "DroppedAttributesCount"})
	spanMsg          = newMessage(field{1, wireLen, "TraceId"}, field{2, wireLen, "SpanId"}, field{3, wireLen, "TraceState"}, field{4, wireLen, "ParentSpanId"},
		field{5, wireLen, "Name"}, field{6, wireVarint, "Kind"}, field{7, wireI64, "StartTimeUnixNano"}, field{8, wireI64, "EndTimeUnixNano"},
		field{9, wireLen, "Attributes"}, field{10, wireVarint, "DroppedAttributesCount"}, field{11, wireLen, "Events"}, field{12, wireVarint, "DroppedEventsCount"},
		field{13, wireLen, "Links"}, field{14, wireVarint, "DroppedLinksCount"}, field{15, wireLen, "Status"}, field{16, wireI32, "Flags"})
	statusMsg = newMessage(field{2, wireLen, "Message"}, field{3, wireVarint, "Code"})
	eventMsg  = newMessage(field{1, wireI64, "TimeUnixNano"}, field{2, wireLen, "Name"}, field{3, wireLen, "Attributes"}, field{4, wireVarint, "DroppedAttributesCount"})
	linkMsg   = newMessage(field{1, wireLen, "TraceId"}, field{2, wireLen, "SpanId"}, field{3, wireLen, "TraceState"}, field{4, wireLen, "Attributes"},
		field{5, wireVarint, "DroppedAttributesCount"}, field{6, wireI32, "Flags"})
	keyValueMsg = newMessage(field{1, wireLen, "Key"}, field{2, wireLen, "Value"}, field{3, wireVarint, "KeyStrindex"})
	anyValueMsg = newMessage(field{1, wireLen, "StringValue"}, field{2, wireVarint, "BoolValue"}, field{3, wireVarint, "IntValue"}, field{4, wireI64, "DoubleValue"},
		field{5, wireLen, "ArrayValue"}, field{6, wireLen, "KvlistValue"}, field{7, wireLen, "BytesValue"}, field{8, wireVarint, "StringValueStrindex"})
	valuesMsg = newMessage(field{1, wireLen, "Values"})
)

// next reads the field at pos of a message m into f.
func (d *decoder) next(pos, end int, m *message) (fieldValue, int, error) {
	var f fieldValue
	pos, err := d.read(&f, pos, end, m)
	return f, pos, err
}

// read is next into f, for the hot loops: a span's and a value's.
func (d *decoder) read(f *fieldValue, pos, end int, m *message) (int, error) {
	num, wt, pos, err := d.tag(pos, end)
	if err != nil {
		return 0, err
	}
	f.num, f.known = num, false
	want, name := -1, ""
	switch {
	case num < int32(len(m.wire)):
		want, name = int(m.wire[num]), m.name[num]
	case num == 1000 && m.has1000:
		want, name = wireLen, "DeprecatedScopeSpans"
	}
	if want < 0 {
		return d.skip(pos, end, wt)
	}
	if wt != want {
		return 0, wrongWire(wt, name)
	}
	f.known = true
	switch wt {
	case wireLen:
		f.r, pos, err = d.length(pos, end)
	case wireVarint:
		f.n, pos, err = d.varint(pos, end)
	case wireI64:
		f.n, pos, err = d.fixed64(pos, end)
	case wireI32:
		var n uint32
		n, pos, err = d.fixed32(pos, end)
		f.n = uint64(n)
	}
	return pos, err
}

func (d *decoder) str(r rng) string { return d.s[r.from:r.to] }

// countSpans counts the spans of the request in b[pos:end], so that the
// output is allocated once: it reads only the tags and lengths of the
// request's, the resourceSpans' and the scopeSpans' fields, and stops
// at the first that does not decode (request then says why).
func (d *decoder) countSpans(pos, end int) int {
	n := 0
	// each calls fn with every length-delimited field num of b[r].
	each := func(r rng, num int32, fn func(rng)) bool {
		for p := r.from; p < r.to; {
			f, wt, next, err := d.tag(p, r.to)
			if err != nil {
				return false
			}
			if wt != wireLen {
				if next, err = d.skip(next, r.to, wt); err != nil {
					return false
				}
				p = next
				continue
			}
			fr, next, err := d.length(next, r.to)
			if err != nil {
				return false
			}
			p = next
			if f == num {
				fn(fr)
			}
		}
		return true
	}
	each(rng{pos, end}, 1, func(rs rng) {
		// The deprecated scope spans (1000) are counted too: rare, and
		// only capacity.
		scopes := func(ss rng) { each(ss, 2, func(rng) { n++ }) }
		each(rs, 2, scopes)
		each(rs, 1000, scopes)
	})
	return n
}

// minValidSpan is the fewest bytes a span that is stored takes in a
// request: its field's tag and length, a trace id, a span id, a start
// and an end (none of them zero).
const minValidSpan = 2 + 18 + 10 + 9 + 9

// spanRoom is the room the output needs for the request in b[pos:end]:
// its spans, and never more than the spans its size can hold that are
// stored, since a span that is not is given back its place at once (a
// request of empty spans, two bytes each, would otherwise take 236
// times its size).
func (d *decoder) spanRoom(pos, end int) int {
	return min(d.countSpans(pos, end), (end-pos)/minValidSpan+1)
}

// request decodes an ExportTraceServiceRequest.
func (d *decoder) request(pos, end int) error {
	for i := 0; pos < end; {
		f, next, err := d.next(pos, end, requestMsg)
		if err != nil {
			return err
		}
		pos = next
		if f.known {
			if err := d.resourceSpans(f.r, d.rsBase+i); err != nil {
				return err
			}
			i++
		}
	}
	return nil
}

// resourceSpans decodes the resourceSpans i of the batch, in two
// passes over its fields, since its resource may come after the spans
// that need it: the resource and the schema URL first, then the scope
// spans. Nothing is gathered between the passes, so that a request of
// many small fields costs no list of them.
func (d *decoder) resourceSpans(r rng, i int) error {
	var res schema.Resource
	var f fieldValue
	hasScopeSpans := false
	base := len(d.kvStack)
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, resourceSpansMsg)
		if err == nil {
			pos = next
			switch f.num {
			case 1:
				err = d.resource(f.r)
			case 2:
				hasScopeSpans = true
			case 3:
				res.SchemaURL = d.str(f.r)
			}
		}
		if err != nil {
			d.kvStack = d.kvStack[:base]
			return err
		}
	}
	res.Attributes = d.popKVs(base)
	// pdata's MigrateTraces: the deprecated scope spans (1000) count only
	// when the current ones (2) are absent; both are decoded, so that
	// either refuses the request when it does not decode.
	use := int32(2)
	if !hasScopeSpans {
		use = 1000
	}
	j := 0
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, resourceSpansMsg)
		if err != nil {
			return err
		}
		pos = next
		if f.num != 2 && f.num != 1000 {
			continue
		}
		if err := d.scopeSpansOf(f.r, i, j, &res, f.num == use); err != nil {
			return err
		}
		if f.num == use {
			j++
		}
	}
	return nil
}

// resource decodes a Resource's fields, pushing its attributes.
func (d *decoder) resource(r rng) error {
	for pos := r.from; pos < r.to; {
		f, next, err := d.next(pos, r.to, resourceMsg)
		if err != nil {
			return err
		}
		pos = next
		switch f.num {
		case 1:
			kv, err := d.keyValue(f.r, 0)
			if err != nil {
				return err
			}
			d.kvStack = append(d.kvStack, kv)
		case 3:
			// Entity references have no place in the file; pdata decodes
			// them, and refuses what does not decode.
			for p := f.r.from; p < f.r.to; {
				_, np, err := d.next(p, f.r.to, entityRefMsg)
				if err != nil {
					return err
				}
				p = np
			}
		}
	}
	return nil
}

// scopeSpansOf decodes the scopeSpans j of resourceSpans i, whose
// resource is res, in two passes as resourceSpans does: the scope and
// the schema URL, then the spans; keep false decodes it only to check it.
func (d *decoder) scopeSpansOf(r rng, i, j int, res *schema.Resource, keep bool) error {
	var scope schema.Scope
	var f fieldValue
	base := len(d.kvStack)
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, scopeSpansMsg)
		if err == nil {
			pos = next
			switch f.num {
			case 1:
				err = d.scope(f.r, &scope)
			case 3:
				scope.SchemaURL = d.str(f.r)
			}
		}
		if err != nil {
			d.kvStack = d.kvStack[:base]
			return err
		}
	}
	scope.Attributes = d.popKVs(base)
	k := 0
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, scopeSpansMsg)
		if err != nil {
			return err
		}
		pos = next
		if f.num != 2 {
			continue
		}
		// Each span is decoded in its place in the output, and gives it
		// back when it is not kept: a span is large to copy.
		d.out = append(d.out, schema.Span{})
		s := &d.out[len(d.out)-1]
		why, err := d.span(f.r, s)
		if err != nil {
			return err
		}
		if !keep || why != "" {
			d.out = d.out[:len(d.out)-1]
		}
		if keep && why != "" {
			if d.rejected == 0 {
				d.first = fmt.Sprintf("resourceSpans[%d].scopeSpans[%d].spans[%d]: %s", i, j, k, why)
			}
			d.rejected++
		}
		if keep && why == "" {
			s.Resource, s.Scope = *res, scope
		}
		k++
	}
	return nil
}

// scope decodes an InstrumentationScope's fields into sc, pushing its
// attributes.
func (d *decoder) scope(r rng, sc *schema.Scope) error {
	for pos := r.from; pos < r.to; {
		f, next, err := d.next(pos, r.to, scopeMsg)
		if err != nil {
			return err
		}
		pos = next
		switch f.num {
		case 1:
			sc.Name = d.str(f.r)
		case 2:
			sc.Version = d.str(f.r)
		case 3:
			kv, err := d.keyValue(f.r, 0)
			if err != nil {
				return err
			}
			d.kvStack = append(d.kvStack, kv)
		}
	}
	return nil
}

// invalidRecord is invalid (spans.go) for a decoded span, with OTLP's
// nanoseconds.
func invalidRecord(s *schema.Span, start, end uint64) string {
	switch {
	case !s.TraceID.IsValid():
		return "trace id is all zero"
	case !s.SpanID.IsValid():
		return "span id is all zero"
	case start == 0:
		return "start time is 0 (unset)"
	case end < start:
		// Compared as the uint64 nanoseconds OTLP sends, so an end of 0
		// (unset) is before any start.
		return fmt.Sprintf("end time %d ns is before start time %d ns", end, start)
	}
	return ""
}

// unixNano is nsTime of OTLP's nanoseconds.
func unixNano(ns uint64) time.Time { return time.Unix(0, int64(ns)) }

// id copies an id field into dst: pdata takes an empty one as zero and
// refuses any other length.
func (d *decoder) id(dst []byte, r rng, bad error) error {
	switch n := r.to - r.from; n {
	case 0:
		clear(dst)
	case len(dst):
		copy(dst, d.b[r.from:r.to])
	default:
		return bad
	}
	return nil
}

// span decodes a Span as spans.go's span converts it, leaving out its
// resource and scope; why is invalid's reason not to store it, or "".
func (d *decoder) span(r rng, s *schema.Span) (why string, err error) {
	start, end, err := d.spanFields(r, s)
	if err != nil {
		return "", err
	}
	return invalidRecord(s, start, end), nil
}

// spanFields decodes a span into s, which is zero, for span, and
// returns its start and end as sent.
func (d *decoder) spanFields(r rng, s *schema.Span) (uint64, uint64, error) {
	s.PubSub = schema.PubSub{BodySize: -1, Subscribers: -1, Stateful: -1}
	var flags uint32
	var start, end uint64
	var status int32
	nEvents, nLinks := 0, 0
	base := len(d.kvStack)
	var f fieldValue
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, spanMsg)
		if err != nil {
			return 0, 0, err
		}
		pos = next
		switch f.num {
		case 1:
			err = d.id(s.TraceID[:], f.r, errTraceIDLength)
		case 2:
			err = d.id(s.SpanID[:], f.r, errSpanIDLength)
		case 3:
			s.TraceState = d.str(f.r)
		case 4:
			err = d.id(s.ParentSpanID[:], f.r, errSpanIDLength)
		case 5:
			s.Name = d.str(f.r)
		case 6:
			s.Kind = trace.SpanKind(int32(f.n))
		case 7:
			start = f.n
		case 8:
			end = f.n
		case 9:
			var kv attribute.KeyValue
			kv, err = d.keyValue(f.r, 0)
			d.kvStack = append(d.kvStack, kv)
		case 10:
			s.DroppedAttributes = int(uint32(f.n))
		case 11:
			nEvents++
		case 12:
			s.DroppedEvents = int(uint32(f.n))
		case 13:
			nLinks++
		case 14:
			s.DroppedLinks = int(uint32(f.n))
		case 15:
			err = d.status(f.r, &s.StatusMsg, &status)
		case 16:
			flags = uint32(f.n)
		}
		if err != nil {
			d.kvStack = d.kvStack[:base]
			return 0, 0, err
		}
	}
	s.Attributes = d.spanKVs(base)
	s.Start, s.End = unixNano(start), unixNano(end)
	s.Flags, s.OTLPFlags = trace.TraceFlags(flags), flags
	s.ParentRemote = flags&schema.FlagIsRemote != 0
	switch status {
	case 1:
		s.StatusCode = codes.Ok
	case 2:
		s.StatusCode = codes.Error
	}
	if nEvents+nLinks == 0 {
		return start, end, nil
	}
	// Events and links, in a second pass now that their numbers are known.
	if nEvents > 0 {
		s.Events = make([]schema.Event, 0, nEvents)
	}
	if nLinks > 0 {
		s.Links = make([]schema.Link, 0, nLinks)
	}
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, spanMsg)
		if err != nil {
			return 0, 0, err
		}
		pos = next
		switch f.num {
		case 11:
			e, err := d.event(f.r)
			if err != nil {
				return 0, 0, err
			}
			s.Events = append(s.Events, e)
		case 13:
			l, err := d.link(f.r)
			if err != nil {
				return 0, 0, err
			}
			s.Links = append(s.Links, l)
		}
	}
	return start, end, nil
}

// status decodes a Status into msg and code, field by field: a second
// status of a span merges into the first, as pdata's does.
func (d *decoder) status(r rng, msg *string, code *int32) error {
	for pos := r.from; pos < r.to; {
		f, next, err := d.next(pos, r.to, statusMsg)
		if err != nil {
			return err
		}
		pos = next
		switch f.num {
		case 2:
			*msg = d.str(f.r)
		case 3:
			*code = int32(f.n)
		}
	}
	return nil
}

func (d *decoder) event(r rng) (schema.Event, error) {
	var e schema.Event
	var ts uint64
	base := len(d.kvStack)
	for pos := r.from; pos < r.to; {
		f, next, err := d.next(pos, r.to, eventMsg)
		if err != nil {
			d.kvStack = d.kvStack[:base]
			return e, err
		}
		pos = next
		switch f.num {
		case 1:
			ts = f.n
		case 2:
			e.Name = d.str(f.r)
		case 3:
			kv, err := d.keyValue(f.r, 0)
			if err != nil {
				d.kvStack = d.kvStack[:base]
				return e, err
			}
			d.kvStack = append(d.kvStack, kv)
		case 4:
			e.DroppedAttributes = int(uint32(f.n))
		}
	}
	e.Time = unixNano(ts)
	e.Attributes = d.popKVs(base)
	return e, nil
}

func (d *decoder) link(r rng) (schema.Link, error) {
	var l schema.Link
	var flags uint32
	base := len(d.kvStack)
	for pos := r.from; pos < r.to; {
		f, next, err := d.next(pos, r.to, linkMsg)
		if err == nil {
			pos = next
			switch f.num {
			case 1:
				err = d.id(l.TraceID[:], f.r, errTraceIDLength)
			case 2:
				err = d.id(l.SpanID[:], f.r, errSpanIDLength)
			case 3:
				l.TraceState = d.str(f.r)
			case 4:
				var kv attribute.KeyValue
				kv, err = d.keyValue(f.r, 0)
				d.kvStack = append(d.kvStack, kv)
			case 5:
				l.DroppedAttributes = int(uint32(f.n))
			case 6:
				flags = uint32(f.n)
			}
		}
		if err != nil {
			d.kvStack = d.kvStack[:base]
			return l, err
		}
	}
	l.Flags, l.OTLPFlags = trace.TraceFlags(flags), flags
	l.Remote = flags&schema.FlagIsRemote != 0
	l.Attributes = d.popKVs(base)
	return l, nil
}

// popKVs returns the key-values pushed since base in a slice of their
// own (nil for none) and pops them.
func (d *decoder) popKVs(base int) []attribute.KeyValue {
	if len(d.kvStack) == base {
		return nil
	}
	kvs := append([]attribute.KeyValue(nil), d.kvStack[base:]...)
	d.kvStack = d.kvStack[:base]
	return kvs
}

// spanKVChunk is how many key-values the room for spans' attributes
// grows by.
const spanKVChunk = 1024

// spanKVs is popKVs into the room for spans' attributes, capped so that
// no append reaches the next span's.
func (d *decoder) spanKVs(base int) []attribute.KeyValue {
	n := len(d.kvStack) - base
	if n == 0 {
		return nil
	}
	if cap(d.kvs)-len(d.kvs) < n {
		d.kvs = make([]attribute.KeyValue, 0, max(spanKVChunk, n))
	}
	at := len(d.kvs)
	d.kvs = append(d.kvs, d.kvStack[base:]...)
	d.kvStack = d.kvStack[:base]
	return d.kvs[at:len(d.kvs):len(d.kvs)]
}

// keyValue decodes a KeyValue at depth.
func (d *decoder) keyValue(r rng, depth int) (attribute.KeyValue, error) {
	var kv attribute.KeyValue
	if depth >= recursionLimit {
		return kv, errRecursionDepth
	}
	depth++
	var f fieldValue
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, keyValueMsg)
		if err != nil {
			return kv, err
		}
		pos = next
		switch f.num {
		case 1:
			kv.Key = attribute.Key(d.str(f.r))
		case 2:
			// A second value merges into the first in pdata: its oneof
			// member, when it has one, replaces the first's.
			v, set, err := d.anyValue(f.r, depth)
			if err != nil {
				return kv, err
			}
			if set {
				kv.Value = v
			}
		}
	}
	return kv, nil
}

// anyValue decodes an AnyValue at depth as value (value.go) converts it;
// set is false when it holds no value, or only one the file has no
// place for (a string index, of OTLP profiles), which is the empty value.
func (d *decoder) anyValue(r rng, depth int) (v attribute.Value, set bool, err error) {
	if depth >= recursionLimit {
		return v, false, errRecursionDepth
	}
	depth++
	var f fieldValue
	for pos := r.from; pos < r.to; {
		next, err := d.read(&f, pos, r.to, anyValueMsg)
		if err != nil {
			return v, false, err
		}
		pos = next
		if !f.known {
			continue
		}
		set = true
		switch f.num {
		case 1:
			v = attribute.StringValue(d.str(f.r))
		case 2:
			v = attribute.BoolValue(f.n != 0)
		case 3:
			v = attribute.Int64Value(int64(f.n))
		case 4:
			v = attribute.Float64Value(math.Float64frombits(f.n))
		case 5:
			if v, err = d.arrayValue(f.r, depth); err != nil {
				return v, false, err
			}
		case 6:
			if v, err = d.kvlistValue(f.r, depth); err != nil {
				return v, false, err
			}
		case 7:
			var b []byte
			if f.r.to > f.r.from {
				b = d.b[f.r.from:f.r.to]
			}
			v = attribute.ByteSliceValue(b)
		case 8:
			v = attribute.Value{}
		}
	}
	return v, set, nil
}

func (d *decoder) kvlistValue(r rng, depth int) (attribute.Value, error) {
	if depth >= recursionLimit {
		return attribute.Value{}, errRecursionDepth
	}
	depth++
	base := len(d.kvStack)
	for pos := r.from; pos < r.to; {
		f, next, err := d.next(pos, r.to, valuesMsg)
		if err == nil {
			pos = next
			if f.known {
				var kv attribute.KeyValue
				kv, err = d.keyValue(f.r, depth)
				d.kvStack = append(d.kvStack, kv)
			}
		}
		if err != nil {
			d.kvStack = d.kvStack[:base]
			return attribute.Value{}, err
		}
	}
	v := attribute.MapValue(d.kvStack[base:]...)
	d.kvStack = d.kvStack[:base]
	return v, nil
}

// arrayValue decodes an ArrayValue as sliceValue (value.go) converts
// it: a non-empty array of one scalar type as that type's slice, any
// other as a slice of values.
func (d *decoder) arrayValue(r rng, depth int) (attribute.Value, error) {
	if depth >= recursionLimit {
		return attribute.Value{}, errRecursionDepth
	}
	depth++
	base := len(d.valStack)
	defer func() { d.valStack = d.valStack[:base] }()
	for pos := r.from; pos < r.to; {
		f, next, err := d.next(pos, r.to, valuesMsg)
		if err != nil {
			return attribute.Value{}, err
		}
		pos = next
		if f.known {
			v, _, err := d.anyValue(f.r, depth)
			if err != nil {
				return attribute.Value{}, err
			}
			d.valStack = append(d.valStack, v)
		}
	}
	return typedSlice(d.valStack[base:]), nil
}
