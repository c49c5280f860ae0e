package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"cmp"
	"context"
	"math"
	"slices"
	"sync/atomic"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
)

// The trace list's search runs in two steps. First the terms the
// operation cache can judge (operation, window, filters, service, status,
// duration) are judged in memory on the window's operation spans (visit),
// and each file keeps its best candidates in the list's order. Then the
// candidates' rows are read by id, a batch at a time and in that order
// (searchFile.walk), to judge what the cache does not hold (name, attr)
// and to describe the items, until the file has its traces; when few
// rows pass, the candidates left are sieved in SQL first
// (searchsieve.go). A file whose candidates ran out first, while its
// window held more, ranks more (nextRank) and walks them again. Newest
// first, the visit reads the newest chunks first and stops at the first
// that could not hold a candidate (listNewestFirst): a page of the
// newest traces reads a chunk or two.
//
// The candidates' order is the list's (search.compare) as far as the
// cache can tell: newest first is the start descending, slowest first the
// duration descending and then the start descending. The trace id that
// breaks ties in the list is in the row; here a tie is broken by the
// operation (its index in schema.Operations), then as the operation index
// gave them when SQL walked it: the end descending and then the row id
// descending (spans_by_op backwards, newest first), or the row id
// (slowest first). A trace's item is its first candidate in this order
// that passes the row's terms: the operation span that ranks best in the
// list, the first operation's when several tie.

// candidate is an operation span that passed the terms the cache judges.
type candidate struct {
	id, start, end int64
	op             uint8
}

// before reports whether a comes before b among the candidates of a file.
func (s *search) before(a, b candidate) bool {
	if s.sort == SortSlowest {
		if da, db := a.end-a.start, b.end-b.start; da != db {
			return da > db
		}
		if a.start != b.start {
			return a.start > b.start
		}
		if a.op != b.op {
			return a.op < b.op
		}
		return a.id < b.id
	}
	if a.start != b.start {
		return a.start > b.start
	}
	if a.op != b.op {
		return a.op < b.op
	}
	if a.end != b.end {
		return a.end > b.end
	}
	return a.id > b.id
}

// tie reports whether the list (search.compare) ranks items of a and b
// alike but for their trace ids.
func (s *search) tie(a, b candidate) bool {
	if s.sort == SortSlowest && a.end-a.start != b.end-b.start {
		return false
	}
	return a.start == b.start
}

// topCandidates keeps the k first candidates offered, in s's order.
type topCandidates struct {
	s *search
	k int
	// h is a heap whose root is the last of the kept candidates.
	h []candidate
	// offered counts every candidate offered, kept or not; skipped is set
	// when candidates were not offered as they could not be kept.
	offered int
	skipped bool
	// floor is the start of the last kept candidate once k are kept,
	// math.MinInt64 before: newest first, a candidate that starts before
	// it is not kept. The lister of chunks reads it as the visit goes.
	floor atomic.Int64
}

func newTopCandidates(s *search, k int) *topCandidates {
	t := &topCandidates{s: s, k: k}
	t.floor.Store(math.MinInt64)
	return t
}

func (t *topCandidates) offer(c candidate) {
	t.offered++
	if len(t.h) < t.k {
		t.h = append(t.h, c)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if !t.s.before(t.h[p], t.h[i]) {
				break
			}
			t.h[p], t.h[i] = t.h[i], t.h[p]
			i = p
		}
		if len(t.h) == t.k {
			t.floor.Store(t.h[0].start)
		}
		return
	}
	if !t.s.before(c, t.h[0]) {
		return
	}
	t.h[0] = c
	for i := 0; ; {
		j := 2*i + 1
		if j >= len(t.h) {
			break
		}
		if j+1 < len(t.h) && t.s.before(t.h[j], t.h[j+1]) {
			j++
		}
		if !t.s.before(t.h[i], t.h[j]) {
			break
		}
		t.h[i], t.h[j] = t.h[j], t.h[i]
		i = j
	}
	t.floor.Store(t.h[0].start)
}

// sorted returns the kept candidates in s's order.
func (t *topCandidates) sorted() []candidate {
	slices.SortFunc(t.h, func(a, b candidate) int {
		if t.s.before(a, b) {
			return -1
		}
		if t.s.before(b, a) {
			return 1
		}
		return 0
	})
	return t.h
}

// complete reports whether the kept candidates are all there were.
func (t *topCandidates) complete() bool { return !t.skipped && t.offered <= len(t.h) }

// searchTraces returns the traces that have an operation in flt's window
// matching flt and s, by trace id, each described by its best matching
// operation; among them are the first want traces in s's order. Each
// file gives its own first want traces (and those that tie with the
// last): a trace ranks no better overall than in the file of its best
// matching operation, so they hold the first want overall.
func (v *Viewer) searchTraces(ctx context.Context, flt *filter, s *search, want int) (map[string]model.TraceItem, error) {
	// The window without its totals (plan): the search counts nothing.
	w := &window{flt: flt, v: v, files: make([]fileTask, len(v.files)), topics: flt.needsTopics(), ex: quantiles.NewExactness(v.exact, false)}
	files := make([]*searchFile, len(v.files))
	items := make([][]model.TraceItem, len(v.files))
	done := make([]bool, len(v.files))
	var err error
	for i, f := range v.files {
		if files[i], err = f.prepareSearch(ctx, s, v.sieve); err != nil {
			return nil, err
		}
		done[i] = files[i] == nil // nothing in f can match
	}
	opIndex, _ := schema.OpIndex(s.op)
	// A trace has one or a few operations, so 4·want candidates give want
	// traces unless the row's terms reject many.
	k := 4 * want
	if s.name != "" || len(s.attrs) > 0 {
		k = 16 * want
	}
	ks := make([]int, len(v.files)) // each file's candidates to rank
	for i := range ks {
		ks[i] = k
	}
	for !allTrue(done) {
		tops := make([]*topCandidates, len(v.files))
		for i := range tops {
			if !done[i] {
				tops[i] = newTopCandidates(s, ks[i])
			}
		}
		for i, sf := range files {
			if !done[i] && sf.rare && !sf.presieved {
				if sf.passed, sf.presieved, err = sf.sieveWindow(ctx, flt, ks[i]); err != nil {
					return nil, err
				}
			}
		}
		var cur *topCandidates // the file's, as visit goes through them
		var curPassed []int64
		var curSieved bool
		begin := func(i int) {
			cur, curPassed, curSieved = tops[i], nil, false
			if files[i] != nil {
				curPassed, curSieved = files[i].passed, files[i].presieved
			}
		}
		visitor := func(strs []string) func(o *opSpan) {
			serviceOK := newStringMemo(strs, func(name string) bool { return name == s.service })
			return func(o *opSpan) {
				if cur == nil || s.op != "" && int(o.op) != opIndex {
					return
				}
				if s.status == "error" && !o.failed || s.status == "ok" && o.failed ||
					!s.durationOK(o.end-o.start) || s.service != "" && !serviceOK.test(o.service) {
					return
				}
				if curSieved {
					if _, ok := slices.BinarySearch(curPassed, o.id); !ok {
						return
					}
				}
				cur.offer(candidate{id: o.id, start: o.start, end: o.end, op: o.op})
			}
		}
		list := func(ctx context.Context, f *file, flt *filter, emit func(int64, []schema.Batch) bool) error {
			switch {
			case cur == nil:
				return nil // nothing to search in f
			case s.sort == SortSlowest:
				return listWindow(ctx, f, flt, emit)
			}
			return listNewestFirst(ctx, f, flt, cur, emit)
		}
		if err := w.visitByFile(ctx, begin, list, visitor); err != nil {
			return nil, err
		}
		for i, top := range tops {
			if top == nil {
				continue
			}
			var ended bool
			if items[i], ended, err = files[i].walk(ctx, s, top.sorted(), want); err != nil {
				return nil, err
			}
			done[i] = ended || top.complete()
			ks[i] = nextRank(ks[i], want, len(items[i]))
		}
	}
	// In the order of files: of two items of a trace that rank alike, the
	// first file's stays.
	best := make(map[string]model.TraceItem)
	for _, l := range items {
		for _, it := range l {
			if old, ok := best[it.TraceID]; !ok || s.compare(it, old) < 0 {
				best[it.TraceID] = it
			}
		}
	}
	return best, nil
}

// maxRank bounds the candidates a file ranks: more than a window holds.
const maxRank = 1 << 40

// nextRank is how many candidates a file ranks in the round after one
// whose k candidates, all walked, gave found of the want traces: as many
// as the traces wanted need at the rate so far (at one in k when none
// gave a trace), twice over, and at least 4 times as many. Sized so, a
// rare name ranks (and sieves) about the candidates its page needs.
func nextRank(k, want, found int) int {
	return min(max(4*k, want*k/max(found, 1)*2), maxRank)
}

func allTrue(bs []bool) bool {
	for _, b := range bs {
		if !b {
			return false
		}
	}
	return true
}

// listNewestFirst hands the chunks of f's window to emit newest first
// (by the latest start their batches rows record), and stops at the first
// chunk whose spans all start before top's floor: none of its spans, nor
// those of the chunks after it, could be kept. top counts them as
// skipped. The
// chunks' batches are listed once to order them, and each again as it is
// read, so that only one chunk's are held.
func listNewestFirst(ctx context.Context, f *file, flt *filter, top *topCandidates, emit func(int64, []schema.Batch) bool) error {
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
		if c.latest < top.floor.Load() {
			top.skipped = true
			return nil
		}
		batches, err := listBatches(ctx, f, schema.BatchesPageQuery, flt.since, flt.until, c.after, c.batches)
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
