package viewer

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The scan of a window streams: the window's batches are listed a page
// at a time and split into tasks of about readTaskSpans spans, run on as
// many goroutines as there are CPUs; each task aggregates its batches
// (held by the cache, or read in one short read transaction) into a
// windowAcc of its own, merged into the window's as it ends. So memory
// holds the aggregates, a page of batches, the spans of the tasks under
// way and the cache's bounded share, whatever the size of the window or
// the number of its batches; a window of more than exactLimit operations
// keeps sketches, not values.
//
// The batches wholly inside the window are aggregated apart from those
// across its edges: their aggregate is what the window memo (memo.go)
// keeps for the next request of the same window start and filters.

// batchPage is how many batches rows one listing query returns.
const batchPage = 4096

// scanTask is one unit of a window's scan: batches of one file, all
// wholly inside the window or all across its edges.
type scanTask struct {
	inside  bool
	batches []schema.Batch
	spans   int64
}

// scanResult is what a scan gathered: the aggregate of the batches
// wholly inside the window (the memo's included), of those across its
// edges, and the range of ids and the print of the batches the scan
// added to the first (of a viewer of one file).
type scanResult struct {
	inside, edges *windowAcc
	added         int
	lo, hi        int64
	print         schema.Print
}

// scanWindow aggregates the operation spans of flt's window over every
// file. base, when not nil, is the window memo of the viewer's one file:
// the batches it holds are neither listed nor read.
func (v *Viewer) scanWindow(ctx context.Context, flt *filter, base *windowMemo) (*scanResult, error) {
	res := &scanResult{inside: newWindowAcc(v.exact), edges: newWindowAcc(v.exact), lo: math.MaxInt64, hi: math.MinInt64}
	skipLo, skipHi := int64(1), int64(0) // none
	if base != nil {
		res.inside = base.acc.clone()
		skipLo, skipHi = base.lo, base.hi
	}
	var seen *seenSpans
	if len(v.files) > 1 {
		seen = &seenSpans{keys: make(map[spanKey]struct{})}
	}
	// A span in two files counts as the first file's: files in order.
	for _, f := range v.files {
		if err := v.scanFile(ctx, f, flt, skipLo, skipHi, seen, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// scanFile lists the batches of f in flt's window, but for the inside
// ones of ids skipLo to skipHi, and aggregates them into res.
func (v *Viewer) scanFile(ctx context.Context, f *file, flt *filter, skipLo, skipHi int64, seen *seenSpans, res *scanResult) error {
	plan := f.ops.begin()
	defer f.ops.done()
	tasks := make(chan *scanTask)
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	var wg sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 2) {
		wg.Go(func() {
			for t := range tasks {
				acc, done, err := v.runScanTask(ctx, f, t, plan, flt, seen)
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				if t.inside {
					res.inside.merge(acc)
					for _, b := range done {
						res.added++
						res.lo, res.hi = min(res.lo, b.ID), max(res.hi, b.ID)
						res.print.Add(b)
					}
				} else {
					res.edges.merge(acc)
				}
				mu.Unlock()
			}
		})
	}
	err := listWindow(ctx, f, flt, skipLo, skipHi, func(t *scanTask) bool {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if !stop {
			tasks <- t
		}
		return !stop
	})
	close(tasks)
	wg.Wait()
	if err != nil {
		return err
	}
	return firstErr
}

// listWindow lists the batches of f in flt's window, but for the inside
// ones of ids skipLo to skipHi, a page at a time, and hands them to emit
// as tasks of about readTaskSpans spans, inside and edge batches apart,
// in id order, until emit returns false.
func listWindow(ctx context.Context, f *file, flt *filter, skipLo, skipHi int64, emit func(*scanTask) bool) error {
	var after int64
	if err := f.db.QueryRowContext(ctx, schema.FirstBatchQuery, flt.since, flt.until).Scan(&after); err != nil {
		return fmt.Errorf("read batches of %s: %w", f.path, err)
	}
	if after == 0 {
		return nil
	}
	after--
	var open [2]*scanTask
	for {
		page, err := listBatches(ctx, f, schema.BatchesPageQuery, flt.since, flt.until, skipLo, skipHi, after, batchPage)
		if err != nil {
			return err
		}
		for _, b := range page {
			inside := b.Within(flt.since, flt.until)
			c := 0
			if inside {
				c = 1
			}
			if open[c] == nil {
				open[c] = &scanTask{inside: inside}
			}
			t := open[c]
			t.batches = append(t.batches, b)
			t.spans += b.LastSpan - b.FirstSpan + 1
			if t.spans >= readTaskSpans {
				open[c] = nil
				if !emit(t) {
					return nil
				}
			}
		}
		if len(page) < batchPage {
			break
		}
		after = page[len(page)-1].ID
	}
	for _, t := range open {
		if t != nil && !emit(t) {
			return nil
		}
	}
	return nil
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

// runScanTask aggregates the batches of t, those the cache holds and the
// others read, and returns the batches rows as aggregated.
func (v *Viewer) runScanTask(ctx context.Context, f *file, t *scanTask, plan *opsPlan, flt *filter, seen *seenSpans) (*windowAcc, []schema.Batch, error) {
	acc := newWindowAcc(v.exact)
	var done []schema.Batch
	topics := flt.needsTopics()
	parts, misses := f.ops.lookup(plan, t.batches, topics)
	if len(parts) > 0 {
		strs := f.ops.strings(plan)
		keep := flt.spanTest(strs)
		for _, b := range parts {
			acc.addBatch(b, strs, flt, keep, seen)
			done = append(done, b.batch)
		}
	}
	if len(misses) > 0 {
		r, err := f.readBatches(ctx, misses, topics, seen != nil)
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
