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
// operation spans of the batches the cache does not hold, in short read
// transactions on as many connections as there are CPUs; then the
// aggregates over the spans of the window, and the average traces.
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
	files, err := v.planFiles(ctx, flt)
	if err != nil {
		return nil, err
	}
	acc := newWindowAcc(len(v.files) > 1)
	oldest := int64(math.MaxInt64)
	for i, f := range v.files {
		t := &files[i]
		s.Files = append(s.Files, t.summary)
		s.Dropped += t.summary.Dropped
		s.Failed += t.summary.Failed
		s.Spans += t.spans
		if t.summary.Oldest != nil {
			oldest = min(oldest, t.summary.Oldest.UnixNano())
		}
		f.ops.add(t.plan, t.reads)
		addFileOps(acc, t.plan, f.ops.strings(t.plan), flt)
	}
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
	// plan is the batches of the window, found in the cache or to read;
	// reads holds those read.
	plan  *opsPlan
	reads []*readBatches
}

// planFiles reads each file's totals and the operation spans of the
// window's batches that its cache does not hold.
func (v *Viewer) planFiles(ctx context.Context, flt *filter) ([]fileTask, error) {
	withKeys := len(v.files) > 1
	topics := flt.needsTopics()
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

// addFileOps adds to acc the operation spans of plan that are in flt's
// window and pass it; strs are the strings plan's spans number.
func addFileOps(acc *windowAcc, plan *opsPlan, strs []string, flt *filter) {
	keep := flt.spanTest(strs)
	notified := make([]bool, len(strs))
	for _, b := range plan.parts {
		within := b.batch.Within(flt.since, flt.until)
		for j := range b.ops {
			o := &b.ops[j]
			if !within && !flt.inWindow(o.start) || keep != nil && !keep(o) {
				continue
			}
			if b.keys != nil && !acc.firstSight(b.keys[j]) {
				continue
			}
			acc.ops[o.op].add(o)
			if o.op == schema.NotifyIndex {
				notified[o.broadcaster] = true
			}
		}
	}
	for id, ok := range notified {
		if ok {
			acc.addBroadcaster(strs[id])
		}
	}
}
