package opstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// Window is one request's window over every file of a store: each
// file's totals, and the filter and columns its operation spans are read
// with. Every aggregate (the summary, a series, a breakdown, the map, the
// search) is a Visitor that a visit hands the spans to, so that one read
// serves them all.
//
// The read streams: a visit lists the window's batches a page at a time,
// cuts them into chunks (chunkShift), and reads the chunks the cache does
// not hold, each in one short read transaction, on as many goroutines as
// there are CPUs; as each chunk is read or found in the cache, its spans
// go to the visitors, one chunk at a time. So memory holds a page of
// batches, the spans of the tasks under way, the aggregates and the
// cache's bounded share, whatever the size of the window or its number
// of batches.
type Window struct {
	flt   *Filter
	store *Store
	// Files are the files' totals, in the store's order (Plan); nil in
	// a window of Store.Window.
	Files  []FileWindow
	topics bool
	// now is the present, which tells how long an exit has waited
	// (phases.go).
	now func() time.Time
	// exits keeps what the visits learnt of chains of parents that leave
	// a file (phases.go).
	exits exitMemo
}

// FileWindow is what a plan reads of one file before its scan.
type FileWindow struct {
	Summary model.FileSummary
	// Spans counts the spans of the window, phases included.
	Spans int64
}

// Visitor is one aggregate's view of a window's operation spans: called
// with the strings the spans of a chunk number (Span's string fields
// index them), it returns what to do with each span. A visit calls a
// visitor and the functions it returns from one goroutine at a time, in
// chunk order within a file; the strings stay valid after the visit, the
// *Span only during its call: a visitor that keeps a span keeps a copy.
type Visitor func(strs []string) func(o *Span)

// Plan reads each file's totals in flt's window; topics asks for the
// spans' topics and glob patterns even when flt does not need them. now
// is the present (the rule of phases waits a while for a span that a
// chain of parents lacks).
func (s *Store) Plan(ctx context.Context, flt *Filter, topics bool, now func() time.Time) (*Window, error) {
	w := s.Window(flt, topics, now)
	w.Files = make([]FileWindow, len(s.files))
	errs := make([]error, len(s.files))
	RunTasks(len(s.files), func(i int) {
		t, f := &w.Files[i], s.files[i]
		if t.Summary, errs[i] = f.describe(ctx); errs[i] != nil {
			return
		}
		t.Spans, errs[i] = f.countSpans(ctx, flt.Since, flt.Until, t.Summary)
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Window is Plan without the totals: a window that a search visits, as
// it counts nothing.
func (s *Store) Window(flt *Filter, topics bool, now func() time.Time) *Window {
	return &Window{flt: flt, store: s, topics: topics || flt.needsTopics(), now: now}
}

// Filter returns the filter w was planned with.
func (w *Window) Filter() *Filter { return w.flt }

// Store returns the store w is a window of.
func (w *Window) Store() *Store { return w.store }

// Spans is how many spans the files hold in w's window (Plan).
func (w *Window) Spans() int64 {
	var n int64
	for _, f := range w.Files {
		n += f.Spans
	}
	return n
}

// Visit hands every operation span of the window that passes the filter
// to each visitor, once: a span stored in several files (same trace and
// span id) goes to them from the first file only, files in order.
func (w *Window) Visit(ctx context.Context, visitors ...Visitor) error {
	return w.VisitFiles(ctx, func(int) *Pass { return &Pass{Visitors: visitors} })
}

// Pass is how a visit reads the window of one file.
type Pass struct {
	// Visitors are those the file's spans go to.
	Visitors []Visitor
	// Floor, when set, has the file's chunks read newest first (by the
	// latest start their batches rows record) rather than in id order,
	// and the visit stop at the first chunk whose spans all start before
	// Floor(): a search that keeps the newest spans wants none of its
	// spans, nor of the chunks after it. Floor is called as the visit
	// goes, from another goroutine than the visitors'.
	Floor func() int64
	// Stopped is set by the visit when it stopped before a chunk so.
	Stopped bool
}

// VisitFiles is Visit with each file read as pass says: it calls pass
// with the index of each file in turn (row ids, such as Span.ID, are a
// file's own) before the file's spans go to its visitors; nil skips the
// file.
func (w *Window) VisitFiles(ctx context.Context, pass func(i int) *Pass) error {
	var seen map[SpanKey]struct{}
	if len(w.store.files) > 1 {
		seen = make(map[SpanKey]struct{})
	}
	for i, f := range w.store.files {
		p := pass(i)
		if p == nil {
			continue
		}
		list := listWindow
		if p.Floor != nil {
			list = func(ctx context.Context, f *File, flt *Filter, emit func(int64, []schema.Batch) bool) error {
				return listNewestFirst(ctx, f, flt, p, emit)
			}
		}
		if err := w.visitFile(ctx, f, seen, list, p.Visitors); err != nil {
			return err
		}
	}
	return nil
}

// chunkLister hands the chunks of f's window that a visit reads to emit,
// with their batches in id order, until emit returns false; listWindow
// hands them all, in id order.
type chunkLister func(ctx context.Context, f *File, flt *Filter, emit func(chunk int64, batches []schema.Batch) bool) error

// visitFile reads the operation spans of the chunks of f that list hands
// over and hands them to the visitors.
func (w *Window) visitFile(ctx context.Context, f *File, seen map[SpanKey]struct{}, list chunkLister, visitors []Visitor) error {
	v := &fileVisit{w: w, f: f, plan: f.ops.begin(), seen: seen, visitors: visitors, fns: make([]func(*Span), len(visitors))}
	defer f.ops.done()
	tasks := make(chan chunkTask)
	var wg sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 2) {
		wg.Go(func() {
			var buf []Span
			for t := range tasks {
				buf = v.read(ctx, t, buf)
			}
		})
	}
	err := list(ctx, f, w.flt, func(chunk int64, batches []schema.Batch) bool {
		stop := v.failed()
		if !stop {
			tasks <- chunkTask{chunk, batches}
		}
		return !stop
	})
	close(tasks)
	wg.Wait()
	if err != nil {
		return err
	}
	return v.firstErr
}

// chunkTask is one chunk of a file's window for a visit to read.
type chunkTask struct {
	chunk   int64
	batches []schema.Batch
}

// fileVisit is the visit of one file's window: the goroutines that read
// its chunks hand the spans over under mu, one chunk at a time.
type fileVisit struct {
	w    *Window
	f    *File
	plan *opsPlan
	// seen holds the keys of the spans handed over, across files; nil
	// in a store of one file.
	seen     map[SpanKey]struct{}
	visitors []Visitor
	// fns are the visitors' functions of the chunk being handed over.
	fns      []func(*Span)
	mu       sync.Mutex // seen, fns, the visitors and firstErr
	firstErr error
}

// read reads the operation spans of chunk t, from the cache or from the
// file, and hands them over; buf is an array the spans may go in, and
// it returns the one the next chunk may use.
func (v *fileVisit) read(ctx context.Context, t chunkTask, buf []Span) []Span {
	w, f := v.w, v.f
	key := keyOf(t.batches)
	if ch, exits := f.ops.lookup(v.plan, t.chunk, key, w.topics); ch != nil {
		buf = decodeOps(buf, ch.data, ch.n)
		strs := f.ops.strings(v.plan)
		phases, err := w.settle(ctx, f, t.chunk, key, exits, buf)
		v.deliver(err, buf, ch.keys, strs, phases)
		return buf
	}
	withKeys := len(w.store.files) > 1
	r, err := f.readBatches(ctx, t.batches, w.topics, withKeys, buf)
	if err != nil {
		v.deliver(err, nil, nil, nil, nil)
		return buf
	}
	strs := f.ops.keep(v.plan, r, t.chunk, key, w.topics)
	phases, err := w.settle(ctx, f, t.chunk, key, r.exits, r.ops)
	v.deliver(err, r.ops, r.keys, strs, phases)
	return r.ops // the cache keeps an encoding, not the array
}

// failed reports whether a chunk of the visit has failed: no more are
// read then.
func (v *fileVisit) failed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.firstErr != nil
}

// deliver keeps err, the error of reading a chunk, or else hands the
// chunk's spans over, unless a chunk has failed before.
func (v *fileVisit) deliver(err error, ops []Span, keys []SpanKey, strs []string, phases []int32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil && v.firstErr == nil {
		v.firstErr = err
	}
	if v.firstErr == nil {
		v.hand(ops, keys, strs, phases)
	}
}

// hand gives the spans of the window that pass the filter to the
// visitors; keys are the spans' keys, when read; phases are the
// indices, in order, of spans found to be phases of operations in other
// files. It runs under mu.
func (v *fileVisit) hand(ops []Span, keys []SpanKey, strs []string, phases []int32) {
	flt, seen, fns := v.w.flt, v.seen, v.fns // locals: the loop below calls out per span
	keep := flt.spanTest(strs)
	for j, vis := range v.visitors {
		fns[j] = vis(strs)
	}
	for j := range ops {
		if len(phases) > 0 && phases[0] == int32(j) {
			phases = phases[1:]
			continue
		}
		o := &ops[j]
		if !flt.inWindow(o.Start) || keep != nil && !keep(o) {
			continue
		}
		if seen != nil && keys != nil {
			if _, dup := seen[keys[j]]; dup {
				continue
			}
			seen[keys[j]] = struct{}{}
		}
		for _, fn := range fns {
			fn(o)
		}
	}
}

// batchPage is how many batches rows one listing query returns.
const batchPage = 4096

// listWindow lists the batches of f in flt's window, a page at a time,
// and hands them to emit in id order, a chunk at a time (chunkShift),
// until emit returns false.
func listWindow(ctx context.Context, f *File, flt *Filter, emit func(chunk int64, batches []schema.Batch) bool) error {
	var after int64
	if err := f.db.QueryRowContext(ctx, schema.FirstBatchQuery, flt.Since, flt.Until).Scan(&after); err != nil {
		return fmt.Errorf("read batches of %s: %w", f.path, err)
	}
	if after == 0 {
		return nil
	}
	after--
	var task []schema.Batch
	chunk := int64(-1)
	for {
		page, err := listBatches(ctx, f, schema.BatchesPageQuery, flt.Since, flt.Until, after, batchPage)
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
func listBatches(ctx context.Context, f *File, query string, args ...any) ([]schema.Batch, error) {
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

// listNewestFirst hands the chunks of f's window to emit newest first
// (by the latest start their batches rows record), and stops at the first
// chunk whose spans all start before p's floor, setting p.Stopped. The
// chunks' batches are listed once to order them, and each again as it is
// read, so that only one chunk's are held.
func listNewestFirst(ctx context.Context, f *File, flt *Filter, p *Pass, emit func(int64, []schema.Batch) bool) error {
	type chunkRange struct {
		chunk, after, latest int64
		batches              int
	}
	var chunks []chunkRange
	err := listWindow(ctx, f, flt, func(chunk int64, batches []schema.Batch) bool {
		c := chunkRange{chunk: chunk, after: batches[0].ID - 1, latest: math.MinInt64, batches: len(batches)}
		for _, b := range batches {
			c.latest = max(c.latest, b.MaxStartNs)
		}
		chunks = append(chunks, c)
		return true
	})
	if err != nil {
		return err
	}
	slices.SortFunc(chunks, func(a, b chunkRange) int { return cmp.Compare(b.latest, a.latest) })
	for _, c := range chunks {
		if c.latest < p.Floor() {
			p.Stopped = true
			return nil
		}
		batches, err := listBatches(ctx, f, schema.BatchesPageQuery, flt.Since, flt.Until, c.after, c.batches)
		if err != nil {
			return err
		}
		// Retention may have deleted batches since: keep the chunk's own.
		batches = slices.DeleteFunc(batches, func(b schema.Batch) bool { return b.FirstSpan>>chunkShift != c.chunk })
		if len(batches) > 0 && !emit(c.chunk, batches) {
			return nil
		}
	}
	return nil
}

// WindowRanges returns the span id ranges [first, last] of the chunks of
// f's window in flt, in id order, and the spans they span.
func (f *File) WindowRanges(ctx context.Context, flt *Filter) (ranges [][2]int64, spans int64, err error) {
	err = listWindow(ctx, f, flt, func(_ int64, batches []schema.Batch) bool {
		r := [2]int64{batches[0].FirstSpan, batches[len(batches)-1].LastSpan}
		ranges, spans = append(ranges, r), spans+r[1]-r[0]+1
		return true
	})
	return ranges, spans, err
}
