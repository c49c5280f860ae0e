package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
)

// window is one request's window over every file: each file's totals,
// and the filter and columns its operation spans are read with. Every
// aggregate (the summary, a series, a breakdown, the map) is an
// opVisitor that visit hands the spans to, so that one read serves them
// all.
//
// The read streams: visit lists the window's batches a page at a time,
// cuts them into chunks (chunkShift), and reads the chunks the cache does
// not hold, each in one short read transaction, on as many goroutines as
// there are CPUs; as each chunk is read or found in the cache, its spans
// go to the visitors, one chunk at a time. So memory
// holds a page of batches, the spans of the tasks under way, the
// aggregates and the cache's bounded share, whatever the size of the
// window or its number of batches; and percentiles keep values only
// while the window holds at most exactLimit operations (ex, dist).
type window struct {
	flt    *filter
	v      *Viewer
	files  []fileTask
	topics bool
	// ex counts the window's operations for its percentiles' rule.
	ex *quantiles.Exactness
	// exits keeps what the visits learnt of chains of parents that leave
	// a file (phases.go).
	exits exitMemo
}

// opVisitor is one aggregate's view of a window's operation spans: called
// with the strings the spans of a task number, it returns what to do
// with each span.
type opVisitor func(strs []string) func(o *opSpan)

// fileTask is what a request reads of one file before its scan.
type fileTask struct {
	summary model.FileSummary
	// spans counts the spans of the window, phases included.
	spans int64
}

// plan reads each file's totals; topics asks for topics and glob
// patterns even when flt does not need them.
func (v *Viewer) plan(ctx context.Context, flt *filter, topics bool) (*window, error) {
	files := make([]fileTask, len(v.files))
	errs := make([]error, len(v.files))
	runTasks(len(v.files), func(i int) {
		t, f := &files[i], v.files[i]
		if t.summary, errs[i] = f.describe(ctx); errs[i] != nil {
			return
		}
		t.spans, errs[i] = f.countSpans(ctx, flt.since, flt.until, t.summary)
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return &window{flt: flt, v: v, files: files, topics: topics || flt.needsTopics(), ex: quantiles.NewExactness(v.exact, v.jaeger.partial(time.Unix(0, flt.since)))}, nil
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
// span id) goes to them from the first file only, files in order.
func (w *window) visit(ctx context.Context, visitors ...opVisitor) error {
	return w.visitByFile(ctx, nil, listWindow, visitors...)
}

// chunkLister hands the chunks of f's window that a visit reads to emit,
// with their batches in id order, until emit returns false; listWindow
// hands them all, in id order.
type chunkLister func(ctx context.Context, f *file, flt *filter, emit func(chunk int64, batches []schema.Batch) bool) error

// visitByFile is visit that calls begin, when not nil, with the index of
// each file before its spans go to the visitors (row ids are a file's
// own), and reads the chunks that list hands over.
func (w *window) visitByFile(ctx context.Context, begin func(i int), list chunkLister, visitors ...opVisitor) error {
	var seen map[spanKey]struct{}
	if len(w.files) > 1 {
		seen = make(map[spanKey]struct{})
	}
	for i, f := range w.v.files {
		if begin != nil {
			begin(i)
		}
		if err := w.visitFile(ctx, f, seen, list, visitors); err != nil {
			return err
		}
	}
	return nil
}

// visitFile reads the operation spans of the chunks of f that list hands
// over and hands them to the visitors.
func (w *window) visitFile(ctx context.Context, f *file, seen map[spanKey]struct{}, list chunkLister, visitors []opVisitor) error {
	plan := f.ops.begin()
	defer f.ops.done()
	withKeys := len(w.files) > 1
	flt := w.flt
	type task struct {
		chunk   int64
		batches []schema.Batch
	}
	tasks := make(chan task)
	var mu sync.Mutex // the visitors, seen, ex and firstErr
	var firstErr error
	fns := make([]func(*opSpan), len(visitors))
	// hand gives the spans of the window that pass the filter to the
	// visitors; keys are the spans' keys, when read; phases are the
	// indices, in order, of spans found to be phases of operations in
	// other files.
	hand := func(ops []opSpan, keys []spanKey, strs []string, phases []int32) {
		keep := flt.spanTest(strs)
		for j, vis := range visitors {
			fns[j] = vis(strs)
		}
		for j := range ops {
			if len(phases) > 0 && phases[0] == int32(j) {
				phases = phases[1:]
				continue
			}
			o := &ops[j]
			if !flt.inWindow(o.start) || keep != nil && !keep(o) {
				continue
			}
			if seen != nil && keys != nil {
				if _, dup := seen[keys[j]]; dup {
					continue
				}
				seen[keys[j]] = struct{}{}
			}
			w.ex.Count()
			for _, fn := range fns {
				fn(o)
			}
		}
	}
	var wg sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 2) {
		wg.Go(func() {
			var buf []opSpan
			for t := range tasks {
				key := keyOf(t.batches)
				if ch, exits := f.ops.lookup(plan, t.chunk, key, w.topics); ch != nil {
					buf = decodeOps(buf, ch.data, ch.n)
					strs := f.ops.strings(plan)
					phases, err := w.settle(ctx, f, t.chunk, key, exits, buf)
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if firstErr == nil {
						hand(buf, ch.keys, strs, phases)
					}
					mu.Unlock()
					continue
				}
				r, err := f.readBatches(ctx, t.batches, w.topics, withKeys, buf)
				var strs []string
				var phases []int32
				if err == nil {
					strs = f.ops.keep(plan, r, t.chunk, key, w.topics)
					phases, err = w.settle(ctx, f, t.chunk, key, r.exits, r.ops)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if firstErr == nil {
					hand(r.ops, r.keys, strs, phases)
				}
				mu.Unlock()
				if r != nil {
					buf = r.ops // the cache keeps an encoding, not the array
				}
			}
		})
	}
	err := list(ctx, f, flt, func(chunk int64, batches []schema.Batch) bool {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if !stop {
			tasks <- task{chunk, batches}
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

// batchPage is how many batches rows one listing query returns.
const batchPage = 4096

// listWindow lists the batches of f in flt's window, a page at a time,
// and hands them to emit in id order, a chunk at a time (chunkShift),
// until emit returns false.
func listWindow(ctx context.Context, f *file, flt *filter, emit func(chunk int64, batches []schema.Batch) bool) error {
	var after int64
	if err := f.db.QueryRowContext(ctx, schema.FirstBatchQuery, flt.since, flt.until).Scan(&after); err != nil {
		return fmt.Errorf("read batches of %s: %w", f.path, err)
	}
	if after == 0 {
		return nil
	}
	after--
	var task []schema.Batch
	chunk := int64(-1)
	for {
		page, err := listBatches(ctx, f, schema.BatchesPageQuery, flt.since, flt.until, after, batchPage)
		if err != nil {
			return err
		}
		for _, b := range page {
			if c := b.FirstSpan >> chunkShift; c != chunk {
				if len(task) > 0 && !emit(chunk, task) {
					return nil
				}
				task, chunk = nil, c
			}
			task = append(task, b)
		}
		if len(page) < batchPage {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(task) > 0 {
		emit(chunk, task)
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
