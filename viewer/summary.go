package viewer

import (
	"context"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// summarize computes the Summary of q, whose filter is flt, over every
// file: the window's operation spans (plan) go through the summary's
// accumulator (visit), then the average traces are read.
func (v *Viewer) summarize(ctx context.Context, q Query, flt *opstore.Filter) (*model.Summary, error) {
	w, err := v.plan(ctx, flt, false)
	if err != nil {
		return nil, err
	}
	acc := newWindowAcc(w.ex)
	if err := w.visit(ctx, acc.visitor); err != nil {
		return nil, err
	}
	return v.summaryOf(ctx, q, w, acc)
}

// summaryOf completes the Summary of q from the plan w and the
// accumulator that visited it.
func (v *Viewer) summaryOf(ctx context.Context, q Query, w *window, acc *windowAcc) (*model.Summary, error) {
	now := v.now()
	s := &model.Summary{
		Since:        w.since(q),
		Until:        q.Until,
		Now:          now.In(q.Location),
		TZ:           q.Location.String(),
		Filters:      w.flt.Echo(),
		Operations:   make(map[string]*model.Operation, len(schema.Operations)),
		AverageTrace: make(map[string]*model.AverageTrace, 2),
		Coverage:     v.jaeger.coverage(time.Unix(0, w.flt.Since)),
	}
	for _, t := range w.Files {
		s.Files = append(s.Files, t.Summary)
		s.Dropped += t.Summary.Dropped
		s.Failed += t.Summary.Failed
		s.Spans += t.Spans
	}
	s.Broadcasters = len(acc.broadcasters)
	for i, op := range schema.Operations {
		s.Operations[op] = acc.ops[i].operation(now)
	}
	avgOps := []string{schema.OpNotify, schema.OpReceive}
	avgs := make([]*model.AverageTrace, len(avgOps))
	errs := make([]error, len(avgOps))
	opstore.RunTasks(len(avgOps), func(i int) {
		avgs[i], errs[i] = v.averageTrace(ctx, avgOps[i], w.flt, s.Operations[avgOps[i]].Count)
	})
	for i, op := range avgOps {
		if errs[i] != nil {
			return nil, errs[i]
		}
		s.AverageTrace[op] = avgs[i]
	}
	return s, nil
}
