package viewer

import (
	"slices"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// A page left open on "since the beginning" asks for the same window
// start and filters again and again, and all that changes between two
// requests is the batches written in between. The window memo keeps the
// aggregate of the batches that were wholly inside the last such window,
// with their batches rows: by the batches rule (schema/batches.go), while
// each of those rows reads the same and is still wholly inside the window,
// their spans are what the file holds, so the next request reads only the
// batches the memo lacks. Aggregates merge exactly, so the answer is the
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

// windowMemo is the aggregate of the batches wholly inside a window.
type windowMemo struct {
	key memoKey
	// batches are the batches rows aggregated, per file.
	batches []map[int64]schema.Batch
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

// find returns the memo of key whose batches are all, as they read now,
// in windows and wholly inside [flt.since, flt.until); nil when there is
// none. A memo found stale is forgotten.
func (m *memos) find(key memoKey, windows [][]schema.Batch, flt *filter) *windowMemo {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, w := range m.list {
		if w.key != key {
			continue
		}
		if !w.valid(windows, flt) {
			m.list = slices.Delete(m.list, i, i+1)
			return nil
		}
		w.used = time.Now()
		return w
	}
	return nil
}

func (w *windowMemo) valid(windows [][]schema.Batch, flt *filter) bool {
	if len(windows) != len(w.batches) {
		return false
	}
	for i, list := range windows {
		found := 0
		for _, b := range list {
			if kept, ok := w.batches[i][b.ID]; ok {
				if kept != b || !b.Within(flt.since, flt.until) {
					return false
				}
				found++
			}
		}
		if found != len(w.batches[i]) {
			return false // retention deleted some
		}
	}
	return true
}

// keep remembers the inside aggregate of res for key, unless base (the
// memo the scan started from) already holds every batch of it, or it
// keeps too many values.
func (m *memos) keep(key memoKey, res *scanResult, base *windowMemo) {
	n := 0
	for _, b := range res.insideBatches {
		n += len(b)
	}
	if n == 0 {
		return
	}
	if base != nil {
		same := true
		for i, b := range res.insideBatches {
			same = same && len(b) == len(base.batches[i])
		}
		if same {
			return
		}
	}
	values := res.inside.exactValues()
	if values > maxMemoValues {
		return
	}
	w := &windowMemo{key: key, batches: res.insideBatches, acc: res.inside.clone(), values: values, used: time.Now()}
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
