package viewer

import (
	"context"
	"slices"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The trace list's search runs in two steps. First the terms the
// operation cache can judge (operation, window, filters, service, status,
// duration) are judged in memory on the window's operation spans (visit),
// and each operation of each file keeps its best candidates in the
// list's order. Then the candidates' rows are read by id, a batch at a
// time and in that order (searchFile.walk), to judge what the cache does
// not hold (name, attr) and to describe the items, until the operation
// has its traces. An operation whose candidates ran out first, while its
// window held more, ranks 16 times as many and walks them again.
//
// The order within one operation of one file is the list's (search.compare)
// as far as the cache can tell: newest first is the start descending,
// slowest first the duration descending and then the start descending.
// The trace id that breaks ties in the list is in the row, so a tie is
// broken here by the end descending and then the row id, as the operation
// index gave them when SQL walked it (spans_by_op backwards, newest
// first), or the row id (slowest first).

// candidate is an operation span that passed the terms the cache judges.
type candidate struct{ id, start, end int64 }

// before reports whether a comes before b among the candidates of one
// operation of one file.
func (s *search) before(a, b candidate) bool {
	if s.sort == SortSlowest {
		if da, db := a.end-a.start, b.end-b.start; da != db {
			return da > db
		}
		if a.start != b.start {
			return a.start > b.start
		}
		return a.id < b.id
	}
	if a.start != b.start {
		return a.start > b.start
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
	// offered counts every candidate offered, kept or not.
	offered int
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
func (t *topCandidates) complete() bool { return t.offered <= len(t.h) }

// searchList is the search of one operation in one file.
type searchList struct {
	file, op int
	items    []TraceItem
	done     bool
}

// searchTraces returns the traces that have an operation in flt's window
// matching flt and s, by trace id, each described by its best matching
// operation; among them are the first want traces in s's order. Each
// operation of each file gives its own first want traces (and those that
// tie with the last), each described by its first matching operation in
// that operation's order: a trace ranks no better overall than in the
// file and operation of its best matching operation, so they hold the
// first want overall.
func (v *Viewer) searchTraces(ctx context.Context, flt *filter, s *search, want int) (map[string]TraceItem, error) {
	w, err := v.plan(ctx, flt, false)
	if err != nil {
		return nil, err
	}
	files := make([]*searchFile, len(v.files))
	var lists []*searchList
	for i, f := range v.files {
		if files[i], err = f.prepareSearch(ctx, s); err != nil {
			return nil, err
		}
		if files[i] == nil {
			continue // nothing in f can match
		}
		for op := range schema.Operations {
			if s.op == "" || schema.Operations[op] == s.op {
				lists = append(lists, &searchList{file: i, op: op})
			}
		}
	}
	// Most traces have one or a few operations of each kind, so 4·want
	// candidates give want traces unless the row's terms reject many.
	k := 4 * want
	if s.name != "" || len(s.attrs) > 0 {
		k = 16 * want
	}
	for {
		tops := make([][]*topCandidates, len(v.files))
		var pending []*searchList
		for _, l := range lists {
			if l.done {
				continue
			}
			if tops[l.file] == nil {
				tops[l.file] = make([]*topCandidates, len(schema.Operations))
			}
			tops[l.file][l.op] = &topCandidates{s: s, k: k}
			pending = append(pending, l)
		}
		if len(pending) == 0 {
			break
		}
		var cur []*topCandidates // the file's, as visit goes through them
		begin := func(i int) { cur = tops[i] }
		visitor := func(strs []string) func(o *opSpan) {
			serviceOK := newStringMemo(strs, func(name string) bool { return name == s.service })
			return func(o *opSpan) {
				if cur == nil || cur[o.op] == nil {
					return
				}
				if s.status == "error" && !o.failed || s.status == "ok" && o.failed ||
					!s.durationOK(o.end-o.start) || s.service != "" && !serviceOK.test(o.service) {
					return
				}
				cur[o.op].offer(candidate{id: o.id, start: o.start, end: o.end})
			}
		}
		if err := w.visitByFile(ctx, begin, visitor); err != nil {
			return nil, err
		}
		for _, l := range pending {
			top := tops[l.file][l.op]
			items, ended, err := files[l.file].walk(ctx, s, schema.Operations[l.op], top.sorted(), want)
			if err != nil {
				return nil, err
			}
			l.items = items
			l.done = ended || top.complete()
		}
		k *= 16
	}
	// In the order of files, then operations: of two equal items of a
	// trace, the first stays.
	best := make(map[string]TraceItem)
	for _, l := range lists {
		for _, it := range l.items {
			if old, ok := best[it.TraceID]; !ok || s.compare(it, old) < 0 {
				best[it.TraceID] = it
			}
		}
	}
	return best, nil
}
