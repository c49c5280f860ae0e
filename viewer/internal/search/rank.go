package search

import (
	"context"
	"math"
	"slices"
	"sync/atomic"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// The trace list's search runs in two steps. First the terms the
// operation cache can judge (operation, window, filters, service, status,
// duration) are judged in memory on the window's operation spans (visit),
// and each file keeps its best candidates in the list's order. Then the
// candidates' rows are read by id, a batch at a time and in that order
// (searchFile.walk), to judge what the cache does not hold (name, attr)
// and to describe the items, until the file has its traces; when few
// rows pass, the candidates left are sieved in SQL first
// (sieve.go). A file whose candidates ran out first, while its
// window held more, ranks more (nextRank) and walks them again. Newest
// first, the visit reads the newest chunks first and stops at the first
// that could not hold a candidate (opstore.Pass.Floor): a page of the
// newest traces reads a chunk or two.
//
// The candidates' order is the list's (Terms.Compare) as far as the
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
func (s *Terms) before(a, b candidate) bool {
	if s.Sort == SortSlowest {
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

// tie reports whether the list (Terms.Compare) ranks items of a and b
// alike but for their trace ids.
func (s *Terms) tie(a, b candidate) bool {
	if s.Sort == SortSlowest && a.end-a.start != b.end-b.start {
		return false
	}
	return a.start == b.start
}

// topCandidates keeps the k first candidates offered, in s's order.
type topCandidates struct {
	s *Terms
	k int
	// h is a heap whose root is the last of the kept candidates.
	h []candidate
	// offered counts every candidate offered, kept or not.
	offered int
	// floor is the start of the last kept candidate once k are kept,
	// math.MinInt64 before: newest first, a candidate that starts before
	// it is not kept. The visit reads it as it goes (opstore.Pass.Floor).
	floor atomic.Int64
}

func newTopCandidates(s *Terms, k int) *topCandidates {
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

// complete reports whether the kept candidates are all that were
// offered.
func (t *topCandidates) complete() bool { return t.offered <= len(t.h) }

// Traces returns the traces that have an operation in w's window
// matching its filter and s, by trace id, each described by its best
// matching operation; among them are the first want traces in s's
// order. Each file gives its own first want traces (and those that tie
// with the last): a trace ranks no better overall than in the file of
// its best matching operation, so they hold the first want overall. A
// walk sieves by rule.
func Traces(ctx context.Context, w *opstore.Window, s *Terms, want int, rule Rule) (map[string]model.TraceItem, error) {
	// A trace has one or a few operations, so 4·want candidates give want
	// traces unless the row's terms reject many.
	k := 4 * want
	if s.Name != "" || len(s.Attrs) > 0 {
		k = 16 * want
	}
	files := w.Store().Files()
	fs := make([]*fileSearch, len(files))
	for i, f := range files {
		sf, err := prepare(ctx, f, s, rule)
		if err != nil {
			return nil, err
		}
		fs[i] = &fileSearch{reads: sf, k: k, done: sf == nil} // nil: nothing in f can match
	}
	opIndex, _ := schema.OpIndex(s.Op)
	for slices.ContainsFunc(fs, func(x *fileSearch) bool { return !x.done }) {
		for _, x := range fs {
			if x.done {
				continue
			}
			x.top = newTopCandidates(s, x.k)
			if sf := x.reads; sf.rare && !sf.presieved {
				var err error
				if sf.passed, sf.presieved, err = sf.sieveWindow(ctx, w.Filter(), x.k); err != nil {
					return nil, err
				}
			}
		}
		err := w.VisitFiles(ctx, func(i int) *opstore.Pass {
			x := fs[i]
			if x.done {
				return nil
			}
			x.pass = &opstore.Pass{Visitors: []opstore.Visitor{x.visitor(s, opIndex)}}
			if s.Sort != SortSlowest {
				// Newest first, the visit stops at the first chunk that
				// could not hold a candidate.
				x.pass.Floor = x.top.floor.Load
			}
			return x.pass
		})
		if err != nil {
			return nil, err
		}
		for _, x := range fs {
			if x.done {
				continue
			}
			var ended bool
			if x.items, ended, err = x.reads.walk(ctx, s, x.top.sorted(), want); err != nil {
				return nil, err
			}
			x.done = ended || !x.pass.Stopped && x.top.complete()
			x.k = nextRank(x.k, want, len(x.items))
		}
	}
	// In the order of files: of two items of a trace that rank alike, the
	// first file's stays.
	best := make(map[string]model.TraceItem)
	for _, x := range fs {
		for _, it := range x.items {
			if old, ok := best[it.TraceID]; !ok || s.Compare(it, old) < 0 {
				best[it.TraceID] = it
			}
		}
	}
	return best, nil
}

// fileSearch is a search's state in one file, from round to round.
type fileSearch struct {
	// reads are the file's reads; nil when nothing in the file can match.
	reads *searchFile
	// k is how many candidates the round ranks; top and pass are the
	// round's candidates and visit of the file.
	k    int
	top  *topCandidates
	pass *opstore.Pass
	// items are the file's traces, as its last walk found them; done is
	// set once they are all it has to give.
	items []model.TraceItem
	done  bool
}

// visitor offers top the spans that pass the terms the cache judges: the
// operation (of index opIndex), status, duration, service, and with a
// presieved window the sieve's.
func (x *fileSearch) visitor(s *Terms, opIndex int) opstore.Visitor {
	return func(strs []string) func(o *opstore.Span) {
		serviceOK := s.serviceMemo(strs)
		return func(o *opstore.Span) {
			if s.Op != "" && int(o.Op) != opIndex || !s.cacheOK(o, serviceOK) {
				return
			}
			if x.reads.presieved {
				if _, ok := slices.BinarySearch(x.reads.passed, o.ID); !ok {
					return
				}
			}
			x.top.offer(candidate{id: o.ID, start: o.Start, end: o.End, op: o.Op})
		}
	}
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
