package search

import (
	"context"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// The trace list's totals: how many operations match the search, and in
// how many traces. The list shows one row per trace, so the two differ
// when a trace holds several matching operations (a notify and its
// retries, say); both are counted so that a door's number can be checked
// against its list (docs/design.md#search).

// maxCountedOps bounds the matching operations whose traces are counted:
// their row ids are kept until the visit ends, and each costs a row read
// (190,000 of them took a second or two on a 2-core machine, 20,000 about
// a tenth of that). Beyond it the operations are still counted, their
// traces not.
const maxCountedOps = 20_000

// MaxCountedWindow bounds the spans of a window whose totals
// /api/traces counts: counting reads every operation span of the window,
// where the list alone reads the newest chunks (a million spans: 127 ms
// warm, 2.3 s cold, where the list took 5 and 77 ms). The page counts
// whatever the window, in the read its aggregates make anyway.
const MaxCountedWindow = 1_000_000

// Totals counts, through a visit of a window, the operations that match
// a search's terms that a visit can test (op, service, status, duration),
// keeping the row ids of the first maxCountedOps by file.
type Totals struct {
	s       *Terms
	opIndex int
	// countable is false when the search has terms the visit cannot test
	// (name, attr), or when the caller does not count (Skip): its totals
	// are not known.
	countable bool
	ops       int64
	ids       [][]int64
}

// NewTotals prepares the totals of s over files files.
func NewTotals(s *Terms, files int) *Totals {
	i, _ := schema.OpIndex(s.Op)
	return &Totals{s: s, opIndex: i, countable: s.Name == "" && len(s.Attrs) == 0, ids: make([][]int64, files)}
}

// Countable reports whether the visit can count the totals.
func (t *Totals) Countable() bool { return t.countable }

// Skip leaves the totals unknown: /api/traces counts them only when asked
// to, and over at most MaxCountedWindow spans.
func (t *Totals) Skip() { t.countable = false }

// Visitor is the visitor of the spans of file i.
func (t *Totals) Visitor(i int) opstore.Visitor {
	return func(strs []string) func(*opstore.Span) {
		s := t.s
		serviceOK := s.serviceMemo(strs)
		return func(o *opstore.Span) {
			if !t.countable || s.Op != "" && int(o.Op) != t.opIndex || !s.cacheOK(o, serviceOK) {
				return
			}
			t.ops++
			if t.ops <= maxCountedOps {
				t.ids[i] = append(t.ids[i], o.ID)
			}
		}
	}
}

// Fill fills l's totals from what the visit counted: the traces are read
// from the files by the row ids kept.
func (t *Totals) Fill(ctx context.Context, files []*opstore.File, l *model.TraceList) error {
	if !t.countable {
		return nil
	}
	ops := t.ops
	l.TotalOperations = &ops
	if t.ops > maxCountedOps {
		return nil
	}
	traces := make(map[[16]byte]struct{})
	for i, ids := range t.ids {
		if err := files[i].TraceIDsOf(ctx, ids, traces); err != nil {
			return err
		}
	}
	n := int64(len(traces))
	l.TotalTraces = &n
	return nil
}
