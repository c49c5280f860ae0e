package viewer

import (
	"context"
	"sync"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The scan of a window streams: the window's batches are split into
// tasks of about readTaskSpans spans, run on as many goroutines as there
// are CPUs; each task aggregates its batches (held by the cache, or read
// in one short read transaction) into a windowAcc of its own, merged into
// the window's as it ends. So memory holds the aggregates, the spans of
// the tasks under way and the cache's bounded share, whatever the size of
// the window; a window of more than exactLimit operations keeps sketches,
// not values.
//
// The batches wholly inside the window are aggregated apart from those
// across its edges: their aggregate is what the window memo (memo.go)
// keeps for the next request of the same window start and filters.

// scanTask is one unit of a window's scan: batches of one file held by
// the cache (parts) or to read (misses), all wholly inside the window or
// all across its edges.
type scanTask struct {
	file   int
	inside bool
	parts  []*batchOps
	misses []schema.Batch
}

// scanResult is what a scan gathered: the aggregate of the batches
// wholly inside the window (memo's included), of those across its edges,
// and the batches the scan added to the first, per file.
type scanResult struct {
	inside, edges *windowAcc
	insideBatches [][]schema.Batch
}

// scanWindow aggregates the operation spans of flt's window over every
// file; windows and plans are each file's batches of the window and what
// the cache holds of them. base, when not nil, is the memo that holds
// the window's batches that windows leaves out.
func (v *Viewer) scanWindow(ctx context.Context, windows [][]schema.Batch, plans []*opsPlan, flt *filter, base *windowMemo) (*scanResult, error) {
	res := &scanResult{inside: newWindowAcc(v.exact), edges: newWindowAcc(v.exact), insideBatches: make([][]schema.Batch, len(v.files))}
	if base != nil {
		res.inside = base.acc.clone()
	}
	var tasks []*scanTask
	for i := range v.files {
		cached := make(map[int64]*batchOps, len(plans[i].parts))
		for _, b := range plans[i].parts {
			cached[b.batch.ID] = b
		}
		// One task per class and about readTaskSpans spans, the batches in
		// id order.
		var open [2]*scanTask
		var spans [2]int64
		for _, b := range windows[i] {
			inside := b.Within(flt.since, flt.until)
			c := 0
			if inside {
				c = 1
			}
			if open[c] == nil || spans[c] >= readTaskSpans {
				open[c] = &scanTask{file: i, inside: inside}
				tasks = append(tasks, open[c])
				spans[c] = 0
			}
			t := open[c]
			if p, ok := cached[b.ID]; ok {
				t.parts = append(t.parts, p)
				spans[c] += int64(len(p.ops)) // held spans cost a tenth of read ones, or less
				continue
			}
			t.misses = append(t.misses, b)
			spans[c] += b.LastSpan - b.FirstSpan + 1
		}
	}
	var seen *seenSpans
	if len(v.files) > 1 {
		seen = &seenSpans{keys: make(map[spanKey]struct{})}
	}
	var mu sync.Mutex
	var firstErr error
	run := func(tasks []*scanTask) {
		runTasks(len(tasks), func(i int) {
			t := tasks[i]
			acc, done, err := v.runScanTask(ctx, t, plans[t.file], flt, seen)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if t.inside {
				res.inside.merge(acc)
				res.insideBatches[t.file] = append(res.insideBatches[t.file], done...)
			} else {
				res.edges.merge(acc)
			}
		})
	}
	if seen == nil {
		run(tasks)
	} else {
		// A span in two files counts as the first file's: files in order.
		for i := range v.files {
			var mine []*scanTask
			for _, t := range tasks {
				if t.file == i {
					mine = append(mine, t)
				}
			}
			run(mine)
		}
	}
	for _, f := range v.files {
		f.ops.done()
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return res, nil
}

// runScanTask aggregates the batches of t, reading its misses, and
// returns the batches rows as aggregated.
func (v *Viewer) runScanTask(ctx context.Context, t *scanTask, plan *opsPlan, flt *filter, seen *seenSpans) (*windowAcc, []schema.Batch, error) {
	f := v.files[t.file]
	acc := newWindowAcc(v.exact)
	var done []schema.Batch
	if len(t.parts) > 0 {
		strs := f.ops.strings(plan)
		keep := flt.spanTest(strs)
		for _, b := range t.parts {
			acc.addBatch(b, strs, flt, keep, seen)
			done = append(done, b.batch)
		}
	}
	if len(t.misses) > 0 {
		r, err := f.readBatches(ctx, t.misses, seen != nil)
		if err != nil {
			return nil, nil, err
		}
		strs := f.ops.keep(plan, r)
		keep := flt.spanTest(strs)
		for _, b := range r.batches {
			acc.addBatch(b, strs, flt, keep, seen)
			done = append(done, b.batch)
		}
	}
	return acc, done, nil
}
