package viewer

import (
	"context"
	"fmt"
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
	windows := make([][]schema.Batch, len(files))
	plans := make([]*opsPlan, len(files))
	oldest := int64(math.MaxInt64)
	for i := range v.files {
		t := &files[i]
		windows[i], plans[i] = t.window, t.plan
		s.Files = append(s.Files, t.summary)
		s.Dropped += t.summary.Dropped
		s.Failed += t.summary.Failed
		s.Spans += t.spans
		if t.summary.Oldest != nil {
			oldest = min(oldest, t.summary.Oldest.UnixNano())
		}
	}
	res, err := v.scanWindow(ctx, windows, plans, flt, base)
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

// fileTask is what a summary reads of one file.
type fileTask struct {
	summary FileSummary
	// spans counts the spans of the window, phases included.
	spans int64
	// window is the batches of the window; plan says which of them the
	// cache holds.
	window []schema.Batch
	plan   *opsPlan
}

// planFiles reads each file's totals and the batches of the window, and
// looks them up in the file's cache. With memo, the window memo of a
// viewer of one file, it lists only the batches the memo does not hold,
// and returns memo; or it forgets a memo the file no longer agrees with,
// lists them all and returns nil.
func (v *Viewer) planFiles(ctx context.Context, flt *filter, memo *windowMemo) ([]fileTask, *windowMemo, error) {
	files := make([]fileTask, len(v.files))
	errs := make([]error, len(v.files))
	runTasks(len(v.files), func(i int) {
		t, f := &files[i], v.files[i]
		if t.summary, errs[i] = f.describe(ctx); errs[i] != nil {
			return
		}
		if t.spans, errs[i] = f.countSpans(ctx, flt.since, flt.until, t.summary); errs[i] != nil {
			return
		}
		if memo != nil {
			ok, err := memo.check(ctx, f, flt)
			if errs[i] = err; err != nil {
				return
			}
			if ok {
				t.window, errs[i] = listBatches(ctx, f, schema.BatchesInWindowExceptQuery, flt.since, flt.until, memo.lo, memo.hi)
				return
			}
			v.memos.forget(memo)
			memo = nil
		}
		t.window, errs[i] = listBatches(ctx, f, schema.BatchesInWindowQuery, flt.since, flt.until)
	})
	for i, f := range v.files {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
		files[i].plan = f.ops.plan(files[i].window)
	}
	return files, memo, nil
}

// listBatches lists the batches query selects with args, in id order.
func listBatches(ctx context.Context, f *file, query string, args ...any) ([]schema.Batch, error) {
	rows, err := f.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read batches of %s: %w", f.path, err)
	}
	defer rows.Close()
	var out []schema.Batch
	for rows.Next() {
		var b schema.Batch
		if err := b.Scan(rows); err != nil {
			return nil, fmt.Errorf("read batches of %s: %w", f.path, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read batches of %s: %w", f.path, err)
	}
	return out, nil
}
