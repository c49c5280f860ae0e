package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"context"
	"encoding/json"
	"fmt"

	"github.com/lonelytrace/lonelytrace/schema"
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

// maxCountedWindow bounds the spans of a window whose totals
// /api/traces counts: counting reads every operation span of the window,
// where the list alone reads the newest chunks (a million spans: 127 ms
// warm, 2.3 s cold, where the list took 5 and 77 ms). The page counts
// whatever the window, in the read its aggregates make anyway.
const maxCountedWindow = 1_000_000

// windowSpans is how many spans w's files hold in its window.
func windowSpans(w *window) int64 {
	var n int64
	for _, f := range w.files {
		n += f.spans
	}
	return n
}

// searchTotals counts, as an opVisitor over a window, the operations that
// match a search's terms that a visit can test (op, service, status,
// duration), keeping the row ids of the first maxCountedOps by file.
type searchTotals struct {
	s       *search
	opIndex int
	// countable is false when the search has terms the visit cannot test
	// (name, attr), or when /api/traces is asked over a window of more
	// than maxCountedWindow spans: its totals are not known.
	countable bool
	ops       int64
	ids       [][]int64
	file      int
}

// newSearchTotals prepares the totals of s over files files.
func newSearchTotals(s *search, files int) *searchTotals {
	i, _ := schema.OpIndex(s.op)
	return &searchTotals{s: s, opIndex: i, countable: s.name == "" && len(s.attrs) == 0, ids: make([][]int64, files)}
}

// begin is visitByFile's begin: the spans that follow are file i's.
func (t *searchTotals) begin(i int) { t.file = i }

// visitor is the searchTotals' opVisitor.
func (t *searchTotals) visitor(strs []string) func(*opSpan) {
	s := t.s
	serviceOK := newStringMemo(strs, func(name string) bool { return name == s.service })
	return func(o *opSpan) {
		if !t.countable || s.op != "" && int(o.op) != t.opIndex ||
			s.status == "error" && !o.failed || s.status == "ok" && o.failed ||
			!s.durationOK(o.end-o.start) || s.service != "" && !serviceOK.test(o.service) {
			return
		}
		t.ops++
		if t.ops <= maxCountedOps {
			t.ids[t.file] = append(t.ids[t.file], o.id)
		}
	}
}

// traceIDsQuery selects the trace ids of the spans whose row ids are in
// the JSON array ?1.
const traceIDsQuery = `SELECT t.trace_id FROM json_each(?1) AS j
JOIN spans AS s ON s.id = j.value
JOIN traces AS t ON t.id = s.trace`

// idsPerQuery bounds the row ids of one traceIDsQuery.
const idsPerQuery = 10_000

// totals fills l's totals from what the visit counted: the traces are
// read from the files by the row ids kept.
func (t *searchTotals) totals(ctx context.Context, v *Viewer, l *model.TraceList) error {
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
		f := v.files[i]
		for len(ids) > 0 {
			n := min(len(ids), idsPerQuery)
			arg, err := json.Marshal(ids[:n])
			if err != nil {
				return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
			}
			ids = ids[n:]
			rows, err := f.db.QueryContext(ctx, traceIDsQuery, string(arg))
			if err != nil {
				return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
			}
			for rows.Next() {
				var id []byte
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
				}
				var k [16]byte
				copy(k[:], id)
				traces[k] = struct{}{}
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("count the traces of the search in %s: %w", f.path, err)
			}
		}
	}
	n := int64(len(traces))
	l.TotalTraces = &n
	return nil
}
