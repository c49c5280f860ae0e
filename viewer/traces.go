package viewer

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// Limits of the trace list and of one trace.
const (
	// DefaultTraceLimit is the page size of the trace list.
	DefaultTraceLimit = 50
	// maxTraceLimit bounds limit, and maxTraceOffset offset+limit.
	maxTraceLimit  = 500
	maxTraceOffset = 10_000
	// maxTraceSpans bounds the spans of one trace that are shown.
	maxTraceSpans = 10_000
)

// listTraces returns the page [offset, offset+limit) of the traces that
// have an operation in flt's window matching flt and s, in s's order,
// with their totals (viewer/internal/search) when count is set.
func (v *Viewer) listTraces(ctx context.Context, flt *opstore.Filter, s *search, loc *time.Location, offset, limit int, count bool) (*model.TraceList, error) {
	t := tsearch.NewTotals(&s.Terms, len(v.files))
	if !count {
		t.Skip()
	}
	if t.Countable() {
		w, err := v.plan(ctx, flt, false)
		if err != nil {
			return nil, err
		}
		// The list alone reads the newest chunks; the totals read the
		// whole window, which costs more than the list past a point.
		if w.Spans() > tsearch.MaxCountedWindow {
			t.Skip()
		} else if err := w.VisitFiles(ctx, func(i int) *opstore.Pass {
			return &opstore.Pass{Visitors: []opstore.Visitor{t.Visitor(i)}}
		}); err != nil {
			return nil, err
		}
	}
	return v.listCountedTraces(ctx, flt, s, loc, offset, limit, t)
}

// listCountedTraces is listTraces with the totals t counted by a visit of
// the caller's.
func (v *Viewer) listCountedTraces(ctx context.Context, flt *opstore.Filter, s *search, loc *time.Location, offset, limit int, t *tsearch.Totals) (*model.TraceList, error) {
	want := offset + limit + 1 // one more tells whether there is a next page
	best, err := tsearch.Traces(ctx, v.store.Window(flt, false, v.now), &s.Terms, want, v.sieve)
	if err != nil {
		return nil, err
	}
	items := make([]model.TraceItem, 0, len(best))
	for _, it := range best {
		items = append(items, it)
	}
	slices.SortFunc(items, s.Compare)
	l := &model.TraceList{Offset: offset, Limit: limit, Sort: s.Sort, Traces: []model.TraceItem{}, Coverage: v.jaeger.coverage(time.Unix(0, flt.Since))}
	if offset < len(items) {
		end := min(offset+limit, len(items))
		l.Traces = items[offset:end]
		l.More = len(items) > end
	}
	for i := range l.Traces {
		l.Traces[i].Start = l.Traces[i].Start.In(loc)
	}
	if err := t.Fill(ctx, v.files, l); err != nil {
		return nil, err
	}
	return l, nil
}

// traceSpans reads trace id from every file, each span once (the first
// file's copy), in the order the files give them; fileOf names the file
// of each.
func (v *Viewer) traceSpans(ctx context.Context, id trace.TraceID) (spans []schema.Span, fileOf map[trace.SpanID]string, err error) {
	fileOf = make(map[trace.SpanID]string)
	for _, f := range v.files {
		got, err := f.Trace(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range got {
			if _, dup := fileOf[s.SpanID]; dup {
				continue // the same span rode home to another file
			}
			fileOf[s.SpanID] = f.Path()
			spans = append(spans, s)
		}
	}
	return spans, fileOf, nil
}

// traceDetail reads trace id from every file, with the spans that link
// to it; nil when no file has it.
func (v *Viewer) traceDetail(ctx context.Context, id trace.TraceID, loc *time.Location) (*model.TraceDetail, error) {
	spans, fileOf, err := v.traceSpans(ctx, id)
	if err != nil || len(spans) == 0 {
		return nil, err
	}
	byID := make(map[trace.SpanID]schema.Span, len(spans))
	order := make([]trace.SpanID, 0, len(spans))
	for _, s := range spans {
		byID[s.SpanID] = s
		order = append(order, s.SpanID)
	}
	children := make(map[trace.SpanID][]trace.SpanID)
	var roots []trace.SpanID
	for _, sid := range order {
		s := byID[sid]
		if _, ok := byID[s.ParentSpanID]; ok && s.ParentSpanID != sid {
			children[s.ParentSpanID] = append(children[s.ParentSpanID], sid)
		} else {
			roots = append(roots, sid)
		}
	}
	byStart := func(a, b trace.SpanID) int {
		return cmp.Or(byID[a].Start.Compare(byID[b].Start), cmp.Compare(byID[a].ID, byID[b].ID))
	}
	slices.SortFunc(roots, byStart)
	start, end := byID[roots[0]].Start, byID[roots[0]].End
	for _, s := range byID {
		if s.Start.Before(start) {
			start = s.Start
		}
		if s.End.After(end) {
			end = s.End
		}
	}
	d := &model.TraceDetail{TraceID: id.String(), Start: start.In(loc), DurationMs: nsToMs(end.Sub(start).Nanoseconds())}
	visited := make(map[trace.SpanID]bool)
	var walk func(sid trace.SpanID, depth int)
	walk = func(sid trace.SpanID, depth int) {
		if visited[sid] || len(d.Spans) >= maxTraceSpans {
			d.Truncated = d.Truncated || !visited[sid]
			return
		}
		visited[sid] = true
		d.Spans = append(d.Spans, spanView(byID[sid], depth, start, fileOf[sid], byID, loc))
		kids := children[sid]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k, min(depth+1, 64))
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	linkedFrom, err := v.store.Backlinks(ctx, id, start.UnixNano(), end.UnixNano())
	if err != nil {
		return nil, err
	}
	for i := range d.Spans {
		d.Spans[i].LinkedFrom = linkedFrom[d.Spans[i].SpanID]
		if d.Spans[i].LinkedFrom == nil {
			d.Spans[i].LinkedFrom = []model.SpanRef{}
		}
	}
	return d, nil
}

func spanView(s schema.Span, depth int, traceStart time.Time, file string, byID map[trace.SpanID]schema.Span, loc *time.Location) model.SpanView {
	sv := model.SpanView{
		SpanID:        s.SpanID.String(),
		ParentRemote:  s.ParentRemote,
		Depth:         depth,
		Name:          s.Name,
		Kind:          s.Kind.String(),
		Status:        opstore.StatusName(s.StatusCode),
		StatusMessage: s.StatusMsg,
		Start:         s.Start.In(loc),
		OffsetMs:      nsToMs(s.Start.Sub(traceStart).Nanoseconds()),
		DurationMs:    nsToMs(s.End.Sub(s.Start).Nanoseconds()),
		Op:            s.PubSub.Op,
		Scope:         s.Scope.Name,
		File:          file,
		Attributes:    keyValues(s.Attributes),
		Events:        []model.EventView{},
		Links:         []model.LinkView{},
	}
	if p := s.PubSub; p.Op != "" {
		sv.PubSub = &model.PubSubFacts{Op: p.Op, Topic: p.Topic, Glob: p.Glob, Broadcaster: p.Broadcaster,
			Stateful: p.Stateful == 1, Failed: s.StatusCode == codes.Error}
		if p.Subscribers >= 0 {
			sv.PubSub.Subscribers = &p.Subscribers
		}
		if p.BodySize >= 0 {
			sv.PubSub.Bytes = &p.BodySize
		}
	}
	if s.ParentSpanID.IsValid() {
		sv.ParentSpanID = s.ParentSpanID.String()
		_, ok := byID[s.ParentSpanID]
		sv.ParentMissing = !ok
	}
	for _, kv := range s.Resource.Attributes {
		if kv.Key == "service.name" {
			sv.Service = kv.Value.String()
		}
	}
	for _, e := range s.Events {
		sv.Events = append(sv.Events, model.EventView{Name: e.Name, Time: e.Time.In(loc), OffsetMs: nsToMs(e.Time.Sub(s.Start).Nanoseconds()), Attributes: keyValues(e.Attributes)})
	}
	for _, l := range s.Links {
		sv.Links = append(sv.Links, model.LinkView{TraceID: l.TraceID.String(), SpanID: l.SpanID.String(), Attributes: keyValues(l.Attributes)})
	}
	return sv
}

func keyValues(kvs []attribute.KeyValue) []model.KeyValue {
	out := make([]model.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		val := kv.Value.String()
		if kv.Value.Type() == attribute.STRING {
			val = strconv.Quote(val)
		}
		out = append(out, model.KeyValue{Key: string(kv.Key), Value: val, Type: kv.Value.Type().String()})
	}
	return out
}
