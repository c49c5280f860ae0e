package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/lonelytrace/lonelytrace/schema"
)

// DefaultSample is how many of the most recent operations in the window
// the average trace is computed from: enough for a stable p99, and it
// keeps the page fast over millions of spans.
const DefaultSample = 2000

// maxPhases bounds the phases listed: the most common ones are kept.
const maxPhases = 100

// sampled is one operation span of the average trace's sample.
type sampled struct {
	key   spanKey
	start int64
}

// averageTrace computes the average trace of op over the most recent
// v.sample operations that pass flt.
func (v *Viewer) averageTrace(ctx context.Context, op string, flt *filter, total int64) (*model.AverageTrace, error) {
	avg := &model.AverageTrace{Total: total, Phases: []model.Phase{}}
	if total == 0 {
		return avg, nil
	}
	// A viewer of one file knows a trace by its row id in that file,
	// which spares a lookup in the traces table for each span read.
	local := len(v.files) == 1
	var ops []sampled
	seen := make(map[spanKey]struct{})
	for _, f := range v.files {
		var err error
		if ops, err = f.recentOps(ctx, op, flt, v.sample, seen, ops, local); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(ops, func(a, b sampled) int { return cmp.Compare(b.start, a.start) })
	if len(ops) > v.sample {
		ops = ops[:v.sample]
	}
	traceSet := make(map[[16]byte]struct{})
	for _, o := range ops {
		traceSet[[16]byte(o.key[:16])] = struct{}{}
	}
	list := make([]any, 0, len(traceSet))
	for id := range traceSet {
		if local {
			list = append(list, int64(binary.BigEndian.Uint64(id[:8])))
		} else {
			list = append(list, hex.EncodeToString(id[:]))
		}
	}
	ids, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	spans := make(map[spanKey]phaseSpan)
	for _, f := range v.files {
		if err := f.traceSpans(ctx, string(ids), op, spans, local); err != nil {
			return nil, err
		}
	}
	// A sampled span under a span of its operation is a phase of that
	// one, not an operation (docs/design.md#one-operation-many-spans).
	ops = slices.DeleteFunc(ops, func(o sampled) bool { return underSameOp(spans, o.key) })
	avg.Operations = len(ops)
	children := make(map[spanKey][]spanKey)
	for k, s := range spans {
		if s.parent != nil {
			p := makeSpanKey(k[:16], s.parent)
			children[p] = append(children[p], k)
		}
	}
	type acc struct {
		starts, ends, durations []int64
		ops, failedOps          int
	}
	byName := make(map[string]*acc)
	for _, o := range ops {
		root, ok := spans[o.key]
		if !ok {
			continue // deleted between the two queries
		}
		inThis := make(map[string]bool)
		failedIn := make(map[string]bool)
		stack := slices.Clone(children[o.key])
		visited := map[spanKey]bool{o.key: true}
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[k] { // a hostile file may hold a cycle
				continue
			}
			visited[k] = true
			stack = append(stack, children[k]...)
			s := spans[k]
			a := byName[s.name]
			if a == nil {
				a = &acc{}
				byName[s.name] = a
			}
			a.starts = append(a.starts, s.start-root.start)
			a.ends = append(a.ends, s.end-root.start)
			a.durations = append(a.durations, s.end-s.start)
			if !inThis[s.name] {
				inThis[s.name] = true
				a.ops++
			}
			if s.failed && !failedIn[s.name] {
				failedIn[s.name] = true
				a.failedOps++
			}
		}
	}
	for name, a := range byName {
		avg.Phases = append(avg.Phases, model.Phase{
			Name:         name,
			StartMs:      percentilesOf(a.starts, nsToMs).P50(),
			EndMs:        percentilesOf(a.ends, nsToMs).P50(),
			DurationMs:   percentilesOf(a.durations, nsToMs),
			Occurrences:  int64(len(a.durations)),
			InPercent:    100 * float64(a.ops) / float64(len(ops)),
			ErrorPercent: 100 * float64(a.failedOps) / float64(len(ops)),
		})
	}
	if len(avg.Phases) > maxPhases {
		slices.SortFunc(avg.Phases, func(a, b model.Phase) int { return cmp.Compare(b.Occurrences, a.Occurrences) })
		avg.Phases = avg.Phases[:maxPhases]
	}
	slices.SortFunc(avg.Phases, func(a, b model.Phase) int {
		return cmp.Or(cmp.Compare(a.StartMs, b.StartMs), cmp.Compare(a.EndMs, b.EndMs), cmp.Compare(a.Name, b.Name))
	})
	return avg, nil
}

// recentOps appends to dst up to n of f's operations op that pass flt, newest
// first, reading the operation index backwards and stopping early. With
// local, their keys hold the trace's row id (see rowKey).
func (f *file) recentOps(ctx context.Context, op string, flt *filter, n int, seen map[spanKey]struct{}, dst []sampled, local bool) ([]sampled, error) {
	where, args := flt.where(op)
	keep := flt.rowTest()
	trace := "(SELECT trace_id FROM traces WHERE traces.id = spans.trace)"
	if local {
		trace = "trace"
	}
	rows, err := f.db.QueryContext(ctx, "SELECT "+trace+", span_id, start_ns, topic, glob FROM spans WHERE "+where+" ORDER BY start_ns DESC", args...)
	if err != nil {
		return dst, fmt.Errorf("sample %s spans of %s: %w", op, f.path, err)
	}
	defer rows.Close()
	var traceID, spanID []byte
	var traceRow int64
	dest := []any{&traceID, &spanID, nil, nil, nil}
	if local {
		dest[0] = &traceRow
	}
	var topic, glob *string
	taken := 0
	for taken < n && rows.Next() {
		var s sampled
		dest[2], dest[3], dest[4] = &s.start, &topic, &glob
		if err := rows.Scan(dest...); err != nil {
			return dst, fmt.Errorf("sample %s spans of %s: %w", op, f.path, err)
		}
		if keep != nil && !keep(orEmpty(topic), orEmpty(glob)) {
			continue
		}
		if local {
			s.key = rowKey(traceRow, spanID)
		} else {
			s.key = makeSpanKey(traceID, spanID)
		}
		if _, dup := seen[s.key]; dup {
			continue
		}
		seen[s.key] = struct{}{}
		dst = append(dst, s)
		taken++
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("sample %s spans of %s: %w", op, f.path, err)
	}
	return dst, nil
}

// orEmpty returns *s, "" for a NULL column.
func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// phaseSpan is what the average trace reads of every span of a sampled
// trace.
type phaseSpan struct {
	parent     []byte
	name       string
	start, end int64
	failed     bool
	// sameOp is set when the span carries the operation sampled.
	sameOp bool
}

// underSameOp reports whether a parent of the span k, in spans, carries
// the operation sampled.
func underSameOp(spans map[spanKey]phaseSpan, k spanKey) bool {
	s, ok := spans[k]
	for range len(spans) { // more steps is a loop in the ids
		if !ok || s.parent == nil {
			return false
		}
		if s, ok = spans[makeSpanKey(k[:16], s.parent)]; ok && s.sameOp {
			return true
		}
	}
	return false
}

// traceSpans adds to dst every span of f in the traces whose hex ids are
// the JSON array ids, or with local, whose row ids are, marking those of
// operation op. A span already in dst (from another file) is kept.
func (f *file) traceSpans(ctx context.Context, ids, op string, dst map[spanKey]phaseSpan, local bool) error {
	query := `
SELECT t.trace_id, s.span_id, s.parent_span_id, s.name, s.start_ns, s.end_ns, s.status_code = ?2, s.op IS ?3
FROM traces AS t JOIN spans AS s ON s.trace = t.id
WHERE t.trace_id IN (SELECT unhex(value) FROM json_each(?1))`
	if local {
		query = `SELECT trace, span_id, parent_span_id, name, start_ns, end_ns, status_code = ?2, op IS ?3 FROM spans
WHERE trace IN (SELECT value FROM json_each(?1))`
	}
	rows, err := f.db.QueryContext(ctx, query, ids, schema.StatusError, op)
	if err != nil {
		return fmt.Errorf("read phases of %s: %w", f.path, err)
	}
	defer rows.Close()
	var traceID, spanID []byte
	var traceRow int64
	dest := []any{&traceID, &spanID, nil, nil, nil, nil, nil, nil}
	if local {
		dest[0] = &traceRow
	}
	for rows.Next() {
		var s phaseSpan
		dest[2], dest[3], dest[4], dest[5], dest[6], dest[7] = &s.parent, &s.name, &s.start, &s.end, &s.failed, &s.sameOp
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read phases of %s: %w", f.path, err)
		}
		k := makeSpanKey(traceID, spanID)
		if local {
			k = rowKey(traceRow, spanID)
		}
		if _, ok := dst[k]; !ok {
			dst[k] = s
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read phases of %s: %w", f.path, err)
	}
	return nil
}
