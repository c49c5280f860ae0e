package viewer

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// summarize computes the Summary of q, whose filter is flt, over every
// file: the window's operation spans (plan) go through the summary's
// accumulator (visit), then the average traces are read.
func (v *Viewer) summarize(ctx context.Context, q Query, flt *filter) (*Summary, error) {
	w, err := v.plan(ctx, flt, false)
	if err != nil {
		return nil, err
	}
	acc := newWindowAcc()
	w.visit(acc.visitor)
	return v.summaryOf(ctx, q, w, acc)
}

// summaryOf completes the Summary of q from the plan w and the
// accumulator that visited it.
func (v *Viewer) summaryOf(ctx context.Context, q Query, w *window, acc *windowAcc) (*Summary, error) {
	now := v.now()
	s := &Summary{
		Since:        w.since(q),
		Until:        q.Until,
		Now:          now.In(q.Location),
		TZ:           q.Location.String(),
		Filters:      w.flt.echo(),
		Operations:   make(map[string]*Operation, len(schema.Operations)),
		AverageTrace: make(map[string]*AverageTrace, 2),
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
	avgs := make([]*AverageTrace, len(avgOps))
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

// window is the operation spans of one request's window over every file:
// each file's totals and the batches of the window, those its cache held
// and those read for this request. Every aggregate (the summary, a
// series, a breakdown, the map) is an opVisitor that visit hands the
// spans to, so that one read serves them all.
type window struct {
	flt   *filter
	v     *Viewer
	files []fileTask
}

// opVisitor is one aggregate's view of a window's operation spans: called
// once per file with the strings that file's spans number, it returns
// what to do with each span.
type opVisitor func(strs []string) func(o *opSpan)

// plan reads each file's totals and the operation spans of flt's window
// that the caches do not hold; topics asks for topics and glob patterns
// even when flt does not need them.
func (v *Viewer) plan(ctx context.Context, flt *filter, topics bool) (*window, error) {
	files, err := v.planFiles(ctx, flt, topics || flt.needsTopics())
	if err != nil {
		return nil, err
	}
	for i, f := range v.files {
		f.ops.add(files[i].plan, files[i].reads)
	}
	return &window{flt: flt, v: v, files: files}, nil
}

// since returns where the window starts: q.Since, or with since=beginning
// the start of the oldest span stored in any file (Until when there is
// none before it).
func (w *window) since(q Query) time.Time {
	if !q.SinceBeginning {
		return q.Since
	}
	oldest := int64(math.MaxInt64)
	for _, t := range w.files {
		if t.summary.Oldest != nil {
			oldest = min(oldest, t.summary.Oldest.UnixNano())
		}
	}
	if oldest != math.MaxInt64 && oldest < q.Until.UnixNano() {
		return time.Unix(0, oldest).In(q.Location)
	}
	return q.Until
}

// visit hands every operation span of the window that passes the filter
// to each visitor, once: a span stored in several files (same trace and
// span id) goes to them from the first file only.
func (w *window) visit(visitors ...opVisitor) {
	var seen map[spanKey]struct{}
	if len(w.files) > 1 {
		seen = make(map[spanKey]struct{})
	}
	flt := w.flt
	fns := make([]func(*opSpan), len(visitors))
	for i, f := range w.v.files {
		plan := w.files[i].plan
		strs := f.ops.strings(plan)
		keep := flt.spanTest(strs)
		for j, vis := range visitors {
			fns[j] = vis(strs)
		}
		for _, b := range plan.parts {
			within := b.batch.Within(flt.since, flt.until)
			for j := range b.ops {
				o := &b.ops[j]
				if !within && !flt.inWindow(o.start) || keep != nil && !keep(o) {
					continue
				}
				if seen != nil && b.keys != nil {
					if _, dup := seen[b.keys[j]]; dup {
						continue
					}
					seen[b.keys[j]] = struct{}{}
				}
				for _, fn := range fns {
					fn(o)
				}
			}
		}
	}
}

// fileTask is what a summary reads of one file.
type fileTask struct {
	summary FileSummary
	// spans counts the spans of the window, phases included.
	spans int64
	// plan is the batches of the window, found in the cache or to read;
	// reads holds those read.
	plan  *opsPlan
	reads []*readBatches
}

// planFiles reads each file's totals and the operation spans of the
// window's batches that its cache does not hold.
func (v *Viewer) planFiles(ctx context.Context, flt *filter, topics bool) ([]fileTask, error) {
	withKeys := len(v.files) > 1
	files := make([]fileTask, len(v.files))
	windows := make([][]schema.Batch, len(v.files))
	errs := make([]error, len(v.files))
	runTasks(len(v.files), func(i int) {
		t, f := &files[i], v.files[i]
		if t.summary, errs[i] = f.describe(ctx); errs[i] != nil {
			return
		}
		if t.spans, errs[i] = f.countSpans(ctx, flt.since, flt.until, t.summary); errs[i] != nil {
			return
		}
		if windows[i], errs[i] = schema.BatchesInWindow(ctx, f.db, flt.since, flt.until); errs[i] != nil {
			errs[i] = fmt.Errorf("%s: %w", f.path, errs[i])
		}
	})
	// One read task covers about readTaskSpans spans of one file.
	type readTask struct {
		file    int
		batches []schema.Batch
		read    *readBatches
		err     error
	}
	var reads []*readTask
	for i, f := range v.files {
		if errs[i] != nil {
			return nil, errs[i]
		}
		t := &files[i]
		t.plan = f.ops.plan(windows[i], topics)
		var r *readTask
		spans := int64(0)
		for _, b := range t.plan.misses {
			if r == nil || spans >= readTaskSpans {
				r = &readTask{file: i}
				reads = append(reads, r)
				spans = 0
			}
			r.batches = append(r.batches, b)
			spans += b.LastSpan - b.FirstSpan + 1
		}
	}
	runTasks(len(reads), func(i int) {
		r := reads[i]
		r.read, r.err = v.files[r.file].readBatches(ctx, r.batches, topics, withKeys)
	})
	for _, r := range reads {
		if r.err != nil {
			return nil, r.err
		}
		files[r.file].reads = append(files[r.file].reads, r.read)
	}
	return files, nil
}
