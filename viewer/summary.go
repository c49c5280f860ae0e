package viewer

import (
	"context"
	"math"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// summarize computes the Summary of q, whose filter is flt, over every
// file. First each file's totals and the batches of the window; then the
// scan of the window (scan.go), from the window memo of the same start
// and filters when there is one (memo.go); then the results of the
// aggregates, and the average traces.
func (v *Viewer) summarize(ctx context.Context, q Query, flt *filter) (*Summary, error) {
	now := v.now()
	s := &Summary{
		Since:        q.Since,
		Until:        q.Until,
		Now:          now.In(q.Location),
		TZ:           q.Location.String(),
		Filters:      flt.echo(),
		Operations:   make(map[string]*Operation, len(schema.Operations)),
		AverageTrace: make(map[string]*AverageTrace, 2),
	}
	key := memoKey{since: flt.since, filters: flt.echo()}
	var base *windowMemo
	if len(v.files) == 1 {
		base = v.memos.get(key)
	}
	files, base, err := v.planFiles(ctx, flt, base)
	if err != nil {
		return nil, err
	}
	oldest := int64(math.MaxInt64)
	for i := range v.files {
		t := &files[i]
		s.Files = append(s.Files, t.summary)
		s.Dropped += t.summary.Dropped
		s.Failed += t.summary.Failed
		s.Spans += t.spans
		if t.summary.Oldest != nil {
			oldest = min(oldest, t.summary.Oldest.UnixNano())
		}
	}
	res, err := v.scanWindow(ctx, flt, base)
	if err != nil {
		return nil, err
	}
	if len(v.files) == 1 {
		v.memos.keep(key, res, base)
	}
	acc := res.inside
	acc.merge(res.edges)
	if q.SinceBeginning {
		s.Since = s.Until
		if oldest != math.MaxInt64 && oldest < q.Until.UnixNano() {
			s.Since = time.Unix(0, oldest).In(q.Location)
		}
	}
	s.Broadcasters = len(acc.broadcasters)
	for i, op := range schema.Operations {
		s.Operations[op] = acc.ops[i].operation(now)
	}
	avgOps := []string{schema.OpNotify, schema.OpReceive}
	avgs := make([]*AverageTrace, len(avgOps))
	errs := make([]error, len(avgOps))
	runTasks(len(avgOps), func(i int) {
		avgs[i], errs[i] = v.averageTrace(ctx, avgOps[i], flt, s.Operations[avgOps[i]].Count)
	})
	for i, op := range avgOps {
		if errs[i] != nil {
			return nil, errs[i]
		}
		s.AverageTrace[op] = avgs[i]
	}
	return s, nil
}

// fileTask is what a summary reads of one file before its scan.
type fileTask struct {
	summary FileSummary
	// spans counts the spans of the window, phases included.
	spans int64
}

// planFiles reads each file's totals. With memo, the window memo of a
// viewer of one file, it checks that the file still agrees with it and
// returns it, or forgets it and returns nil.
func (v *Viewer) planFiles(ctx context.Context, flt *filter, memo *windowMemo) ([]fileTask, *windowMemo, error) {
	files := make([]fileTask, len(v.files))
	errs := make([]error, len(v.files))
	runTasks(len(v.files), func(i int) {
		t, f := &files[i], v.files[i]
		if t.summary, errs[i] = f.describe(ctx); errs[i] != nil {
			return
		}
		t.spans, errs[i] = f.countSpans(ctx, flt.since, flt.until, t.summary)
	})
	for i := range v.files {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
	}
	if memo != nil {
		ok, err := memo.check(ctx, v.files[0], flt)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			v.memos.forget(memo)
			memo = nil
		}
	}
	return files, memo, nil
}
