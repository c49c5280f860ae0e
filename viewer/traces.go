package viewer

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
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

// listTraces returns the page [offset, offset+limit) of q's traces.
func (v *Viewer) listTraces(ctx context.Context, flt *filter, loc *time.Location, offset, limit int) (*TraceList, error) {
	want := offset + limit + 1 // one more tells whether there is a next page
	best := make(map[string]TraceItem)
	for _, f := range v.files {
		// Each file's own top `want` traces hold the global top `want`:
		// a trace ranks no better globally than in the file of its newest
		// operation.
		if err := f.recentTraces(ctx, flt, want, best); err != nil {
			return nil, err
		}
	}
	items := make([]TraceItem, 0, len(best))
	for _, it := range best {
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b TraceItem) int {
		return cmp.Or(b.Start.Compare(a.Start), cmp.Compare(a.TraceID, b.TraceID))
	})
	l := &TraceList{Offset: offset, Limit: limit, Traces: []TraceItem{}}
	if offset < len(items) {
		end := min(offset+limit, len(items))
		l.Traces = items[offset:end]
		l.More = len(items) > end
	}
	for i := range l.Traces {
		l.Traces[i].Start = l.Traces[i].Start.In(loc)
	}
	return l, nil
}

func (f *file) recentTraces(ctx context.Context, flt *filter, want int, best map[string]TraceItem) error {
	// One walk of the operation index per operation, newest first: each
	// stops after want traces, so the list costs the same on any file size.
	for _, op := range schema.Operations {
		if err := f.recentTracesOf(ctx, op, flt, want, best); err != nil {
			return err
		}
	}
	return nil
}

func (f *file) recentTracesOf(ctx context.Context, op string, flt *filter, want int, best map[string]TraceItem) error {
	where, args := flt.where(op)
	query := `SELECT lower(hex((SELECT trace_id FROM traces WHERE traces.id = spans.trace))), name, op, topic, glob, broadcaster, start_ns, end_ns
FROM spans INDEXED BY spans_by_op
WHERE ` + where + " ORDER BY start_ns DESC"
	keep := flt.rowTest()
	rows, err := f.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("list traces of %s: %w", f.path, err)
	}
	defer rows.Close()
	mine := make(map[string]bool)
	for len(mine) < want && rows.Next() {
		var it TraceItem
		var topic, glob, broadcaster *string
		var start, end int64
		if err := rows.Scan(&it.TraceID, &it.Name, &it.Op, &topic, &glob, &broadcaster, &start, &end); err != nil {
			return fmt.Errorf("list traces of %s: %w", f.path, err)
		}
		if keep != nil && !keep(orEmpty(topic), orEmpty(glob)) {
			continue
		}
		if mine[it.TraceID] {
			continue
		}
		mine[it.TraceID] = true
		it.Start = time.Unix(0, start)
		it.Topic, it.Broadcaster = orEmpty(topic), orEmpty(broadcaster)
		it.DurationMs = nsToMs(end - start)
		if old, ok := best[it.TraceID]; !ok || it.Start.After(old.Start) {
			best[it.TraceID] = it
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list traces of %s: %w", f.path, err)
	}
	return nil
}

// parseTraceID accepts 32 hex digits of a valid (non-zero) trace id.
func parseTraceID(s string) (trace.TraceID, error) {
	var id trace.TraceID
	if len(s) != 32 {
		return id, &ParseError{Param: "trace_id", Value: clip(s), Want: "32 hexadecimal digits"}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || !id.IsValid() {
		return id, &ParseError{Param: "trace_id", Value: clip(s), Want: "32 hexadecimal digits, not all zero"}
	}
	return id, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// traceDetail reads trace id from every file; nil when no file has it.
func (v *Viewer) traceDetail(ctx context.Context, id trace.TraceID, loc *time.Location) (*TraceDetail, error) {
	byID := make(map[trace.SpanID]schema.Span)
	fileOf := make(map[trace.SpanID]string)
	var order []trace.SpanID
	for _, f := range v.files {
		spans, err := f.trace(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, s := range spans {
			if _, dup := byID[s.SpanID]; dup {
				continue // the same span rode home to another file
			}
			byID[s.SpanID] = s
			fileOf[s.SpanID] = f.path
			order = append(order, s.SpanID)
		}
	}
	if len(order) == 0 {
		return nil, nil
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
	d := &TraceDetail{TraceID: id.String(), Start: start.In(loc), DurationMs: nsToMs(end.Sub(start).Nanoseconds())}
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
	return d, nil
}

func (f *file) trace(ctx context.Context, id trace.TraceID) ([]schema.Span, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	spans, err := f.reader.Trace(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read trace %s from %s: %w", id, f.path, err)
	}
	return spans, nil
}

func spanView(s schema.Span, depth int, traceStart time.Time, file string, byID map[trace.SpanID]schema.Span, loc *time.Location) SpanView {
	sv := SpanView{
		SpanID:        s.SpanID.String(),
		ParentRemote:  s.ParentRemote,
		Depth:         depth,
		Name:          s.Name,
		Kind:          s.Kind.String(),
		Status:        statusName(s.StatusCode),
		StatusMessage: s.StatusMsg,
		Start:         s.Start.In(loc),
		OffsetMs:      nsToMs(s.Start.Sub(traceStart).Nanoseconds()),
		DurationMs:    nsToMs(s.End.Sub(s.Start).Nanoseconds()),
		Op:            s.PubSub.Op,
		Scope:         s.Scope.Name,
		File:          file,
		Attributes:    keyValues(s.Attributes),
		Events:        []EventView{},
		Links:         []LinkView{},
	}
	if s.ParentSpanID.IsValid() {
		sv.ParentSpanID = s.ParentSpanID.String()
		_, ok := byID[s.ParentSpanID]
		sv.ParentMissing = !ok
	}
	for _, kv := range s.Resource.Attributes {
		if kv.Key == "service.name" {
			sv.Service = kv.Value.Emit()
		}
	}
	for _, e := range s.Events {
		sv.Events = append(sv.Events, EventView{Name: e.Name, Time: e.Time.In(loc), OffsetMs: nsToMs(e.Time.Sub(s.Start).Nanoseconds()), Attributes: keyValues(e.Attributes)})
	}
	for _, l := range s.Links {
		sv.Links = append(sv.Links, LinkView{TraceID: l.TraceID.String(), SpanID: l.SpanID.String(), Attributes: keyValues(l.Attributes)})
	}
	return sv
}

func statusName(c codes.Code) string {
	switch c {
	case codes.Ok:
		return "ok"
	case codes.Error:
		return "error"
	}
	return "unset"
}

func keyValues(kvs []attribute.KeyValue) []KeyValue {
	out := make([]KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		val := kv.Value.Emit()
		if kv.Value.Type() == attribute.STRING {
			val = strconv.Quote(val)
		}
		out = append(out, KeyValue{Key: string(kv.Key), Value: val, Type: kv.Value.Type().String()})
	}
	return out
}
