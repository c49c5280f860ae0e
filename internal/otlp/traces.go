package otlp

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/codes"

	"github.com/lonelytrace/lonelytrace/schema"
)

// Traces converts spans read from lonelytrace files into OTLP traces, one
// ResourceSpans per resource and one ScopeSpans per scope under it, in the
// order each is first met; spans keep their order.
//
// A span the Go exporter wrote has only the W3C byte in its flags: it goes
// out with bits 8 and 9 set from its parent_remote column when that is 1
// (the file does not say whether a local parent was known to be local).
//
// A string that is not valid UTF-8 (a name, a key, a value, a trace
// state, a status message, a scope's or a resource's field) goes out with
// U+FFFD for each byte that is not (docs/design.md, "Invalid UTF-8"), so
// every output is valid OTLP; TracesRepaired also says how many.
func Traces(spans []schema.Span) ptrace.Traces {
	td, _ := TracesRepaired(spans)
	return td
}

// TracesRepaired is Traces that also returns the number of strings whose
// invalid UTF-8 it replaced with U+FFFD.
func TracesRepaired(spans []schema.Span) (td ptrace.Traces, repaired int) {
	td = ptrace.NewTraces()
	var fix utf8Fix
	type scopeKey struct {
		res                int
		name, version, url string
		attrs              string
	}
	resIdx := map[string]int{}
	scopes := map[scopeKey]ptrace.SpanSlice{}
	var buf []byte
	for i := range spans {
		s := &spans[i]
		buf = schema.AppendAttributes(append(buf[:0], s.Resource.SchemaURL...), s.Resource.Attributes, nil)
		ri, ok := resIdx[string(buf)]
		if !ok {
			ri = td.ResourceSpans().Len()
			resIdx[string(buf)] = ri
			rs := td.ResourceSpans().AppendEmpty()
			rs.SetSchemaUrl(fix.str(s.Resource.SchemaURL))
			fix.putAttributes(rs.Resource().Attributes(), s.Resource.Attributes)
		}
		buf = schema.AppendAttributes(buf[:0], s.Scope.Attributes, nil)
		k := scopeKey{res: ri, name: s.Scope.Name, version: s.Scope.Version, url: s.Scope.SchemaURL, attrs: string(buf)}
		ps, ok := scopes[k]
		if !ok {
			ss := td.ResourceSpans().At(ri).ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl(fix.str(s.Scope.SchemaURL))
			ss.Scope().SetName(fix.str(s.Scope.Name))
			ss.Scope().SetVersion(fix.str(s.Scope.Version))
			fix.putAttributes(ss.Scope().Attributes(), s.Scope.Attributes)
			ps = ss.Spans()
			scopes[k] = ps
		}
		fix.putSpan(ps.AppendEmpty(), s)
	}
	return td, fix.n
}

func (fix *utf8Fix) putSpan(p ptrace.Span, s *schema.Span) {
	p.SetTraceID(pcommon.TraceID(s.TraceID))
	p.SetSpanID(pcommon.SpanID(s.SpanID))
	p.SetParentSpanID(pcommon.SpanID(s.ParentSpanID))
	p.SetFlags(outFlags(s.StoredFlags(), s.ParentRemote))
	p.TraceState().FromRaw(fix.str(s.TraceState))
	p.SetName(fix.str(s.Name))
	p.SetKind(ptrace.SpanKind(s.Kind))
	p.SetStartTimestamp(timestamp(s.Start))
	p.SetEndTimestamp(timestamp(s.End))
	switch s.StatusCode {
	case codes.Ok:
		p.Status().SetCode(ptrace.StatusCodeOk)
	case codes.Error:
		p.Status().SetCode(ptrace.StatusCodeError)
	}
	p.Status().SetMessage(fix.str(s.StatusMsg))
	fix.putAttributes(p.Attributes(), s.Attributes)
	p.SetDroppedAttributesCount(uint32(s.DroppedAttributes))
	p.SetDroppedEventsCount(uint32(s.DroppedEvents))
	p.SetDroppedLinksCount(uint32(s.DroppedLinks))
	if len(s.Events) > 0 {
		evs := p.Events()
		evs.EnsureCapacity(len(s.Events))
		for _, ev := range s.Events {
			e := evs.AppendEmpty()
			e.SetName(fix.str(ev.Name))
			e.SetTimestamp(timestamp(ev.Time))
			fix.putAttributes(e.Attributes(), ev.Attributes)
			e.SetDroppedAttributesCount(uint32(ev.DroppedAttributes))
		}
	}
	if len(s.Links) > 0 {
		ls := p.Links()
		ls.EnsureCapacity(len(s.Links))
		for _, l := range s.Links {
			o := ls.AppendEmpty()
			o.SetTraceID(pcommon.TraceID(l.TraceID))
			o.SetSpanID(pcommon.SpanID(l.SpanID))
			o.SetFlags(outFlags(l.OTLPFlags|uint32(l.Flags), l.Remote))
			o.TraceState().FromRaw(fix.str(l.TraceState))
			fix.putAttributes(o.Attributes(), l.Attributes)
			o.SetDroppedAttributesCount(uint32(l.DroppedAttributes))
		}
	}
}

// outFlags is the OTLP flags of stored flags whose remote column or
// member says remote: a Go exporter's remote parent or link, stored with
// the W3C byte alone, gets OTLP's bits 8 and 9. Flags with bits above the
// W3C byte came as OTLP and go out as they came, even bit 9 without
// bit 8.
func outFlags(stored uint32, remote bool) uint32 {
	if remote && stored&^0xff == 0 {
		return stored | schema.FlagHasIsRemote | schema.FlagIsRemote
	}
	return stored
}
