package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"context"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// summarize computes the Summary of q, whose filter is flt, over every
// file: the window's operation spans (plan) go through the summary's
// accumulator (visit), then the average traces are read.
func (v *Viewer) summarize(ctx context.Context, q Query, flt *filter) (*model.Summary, error) {
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
		Filters:      w.flt.echo(),
		Operations:   make(map[string]*model.Operation, len(schema.Operations)),
		AverageTrace: make(map[string]*model.AverageTrace, 2),
		Coverage:     v.jaeger.coverage(time.Unix(0, w.flt.since)),
	}
	for _, t := range w.files {
		s.Files = append(s.Files, t.summary)
		s.Dropped += t.summary.Dropped
		s.Failed += t.summary.Failed
		s.Spans += t.spans
	}
	s.Broadcasters = len(acc.broadcasters)
	for i, op := range schema.Operations {
		s.Operations[op] = acc.ops[i].operation(now)
	}
	avgOps := []string{schema.OpNotify, schema.OpReceive}
	avgs := make([]*model.AverageTrace, len(avgOps))
	errs := make([]error, len(avgOps))
	runTasks(len(avgOps), func(i int) {
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
