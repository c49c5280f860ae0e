package viewer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// A page left open on "since the beginning" asks for the same window
// start and filters again and again, and all that changes between two
// requests is the batches written in between. The window memo keeps the
// aggregate of the batches that were wholly inside the last such window,
// the range of their ids and a print of their rows: by the batches rule
// (schema/batches.go), while the print of the batches of that range
// wholly inside the window reads the same, their spans are what the file
// holds, so the next request lists and reads only the batches outside
// it. The print is summed up in SQL: a file written at a low rate has a
// batch for every few spans, too many to list at every request. Aggregates merge exactly, so the answer is the
// one a scan of the whole window gives: exact values while the window
// holds at most exactLimit operations, the same sketches after.
//
// A viewer of several files keeps no memo: which copy of a span found in
// two files counts is decided as the files are read.

const (
	// maxMemos bounds the windows remembered.
	maxMemos = 4
	// maxMemoValues bounds the exact values the memos keep, over all of
	// them: 8 bytes each, 32 MiB. A memo of sketches takes a few hundred
	// kilobytes at most.
	maxMemoValues = 1 << 22
)

// memoKey is what a memo answers for: a window start and filters.
type memoKey struct {
	since   int64
	filters Filters
}

// windowMemo is the aggregate of the batches wholly inside a window whose
// ids are lo to hi: every such batch of the window between them.
type windowMemo struct {
	key    memoKey
	lo, hi int64
	// print sums up the batches rows aggregated, as the file's
	// WithinPrintQuery does; the memo holds while the file's reads the
	// same.
	print schema.Print
	// acc is never changed once the memo is kept: users clone it.
	acc    *windowAcc
	values int
	used   time.Time
}

// memos keeps the windows remembered.
type memos struct {
	mu   sync.Mutex
	list []*windowMemo
}

// get returns the memo of key, nil when there is none; the caller checks
// it against the file (windowMemo.check).
func (m *memos) get(key memoKey) *windowMemo {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.list {
		if w.key == key {
			w.used = time.Now()
			return w
		}
	}
	return nil
}

// forget drops the memo w, found stale.
func (m *memos) forget(w *windowMemo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = slices.DeleteFunc(m.list, func(o *windowMemo) bool { return o == w })
}

// check reports whether the batches w holds read the same in the file
// now, and are still wholly inside flt's window.
func (w *windowMemo) check(ctx context.Context, f *file, flt *filter) (bool, error) {
	var p schema.Print
	if err := p.Scan(f.db.QueryRowContext(ctx, schema.WithinPrintQuery, flt.since, flt.until, w.lo, w.hi)); err != nil {
		return false, fmt.Errorf("check the window memo of %s: %w", f.path, err)
	}
	return p == w.print, nil
}

// keep remembers the inside aggregate of res for key: base's batches (the
// memo the scan started from), and those the scan added.
func (m *memos) keep(key memoKey, res *scanResult, base *windowMemo) {
	if res.added == 0 {
		return
	}
	values := res.inside.exactValues()
	if values > maxMemoValues {
		return
	}
	w := &windowMemo{key: key, lo: res.lo, hi: res.hi, print: res.print, values: values, used: time.Now()}
	if base != nil {
		w.lo, w.hi = min(w.lo, base.lo), max(w.hi, base.hi)
		w.print.Batches += base.print.Batches
		w.print.Spans += base.print.Spans
		w.print.Written += base.print.Written
	}
	w.acc = res.inside.clone()
	w.acc.sortValues()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = slices.DeleteFunc(m.list, func(o *windowMemo) bool { return o.key == key })
	m.list = append(m.list, w)
	// Over the bounds, the least recently used go first.
	slices.SortFunc(m.list, func(a, b *windowMemo) int { return b.used.Compare(a.used) })
	total := 0
	for i, o := range m.list {
		total += o.values
		if i >= maxMemos || total > maxMemoValues {
			m.list = m.list[:i]
			break
		}
	}
}
