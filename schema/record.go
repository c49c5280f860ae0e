package schema

// A Span is also what a writer is handed for a span that did not come
// from the Go SDK (an OTLP span, say): its events and links are written
// by AppendSpanEvents and AppendSpanLinks, in the same JSON as
// AppendEvents and AppendLinks.
//
// OTLP's span and link flags carry, above the W3C trace flags of bits
// 0-7, bit 8 (whether the parent's, or the linked span's, remoteness is
// known) and bit 9 (it is remote). The flags column and the links' "flags"
// member keep the value whole (OTLPFlags | Flags); the Go exporter writes
// the W3C byte alone, and its parent_remote column says the rest.

// Flag bits of OTLP's span and link flags above the W3C byte.
const (
	FlagHasIsRemote uint32 = 0x100
	FlagIsRemote    uint32 = 0x200
)

// StoredFlags is the value the flags column holds for s.
func (s *Span) StoredFlags() uint32 { return s.OTLPFlags | uint32(s.Flags) }

// AppendSpanEvents appends the JSON array of the spans.events column for
// events.
func AppendSpanEvents(dst []byte, events []Event) []byte {
	dst = append(dst, '[')
	for i, ev := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEvent(dst, ev.Name, ev.Time.UnixNano(), ev.Attributes, ev.DroppedAttributes)
	}
	return append(dst, ']')
}

// AppendSpanLinks appends the JSON array of the spans.links column for
// links. A link's "flags" is OTLPFlags | Flags.
func AppendSpanLinks(dst []byte, links []Link) []byte {
	dst = append(dst, '[')
	for i, l := range links {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendLink(dst, l.TraceID, l.SpanID, uint64(l.OTLPFlags|uint32(l.Flags)), l.TraceState, l.Remote, l.Attributes, l.DroppedAttributes)
	}
	return append(dst, ']')
}
