package viewer

import (
	"cmp"
	"context"
	"slices"

	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// DefaultSample is how many of the most recent operations in the window
// the average trace is computed from: enough for a stable p99, and it
// keeps the page fast over millions of spans.
const DefaultSample = 2000

// maxPhases bounds the phases listed: the most common ones are kept.
const maxPhases = 100

// averageTrace computes the average trace of op over the most recent
// v.sample operations that pass flt.
func (v *Viewer) averageTrace(ctx context.Context, op string, flt *opstore.Filter, total int64) (*model.AverageTrace, error) {
	avg := &model.AverageTrace{Total: total, Phases: []model.Phase{}}
	if total == 0 {
		return avg, nil
	}
	ops, err := v.store.RecentOps(ctx, op, flt, v.sample)
	if err != nil {
		return nil, err
	}
	spans, err := v.store.TraceSpans(ctx, ops, op)
	if err != nil {
		return nil, err
	}
	// A sampled span under a span of its operation is a phase of that
	// one, not an operation (docs/design.md#one-operation-many-spans).
	ops = slices.DeleteFunc(ops, func(o opstore.Sampled) bool { return underSameOp(spans, o.Key) })
	avg.Operations = len(ops)
	children := make(map[opstore.SpanKey][]opstore.SpanKey)
	for k, s := range spans {
		if s.Parent != nil {
			p := opstore.MakeSpanKey(k[:16], s.Parent)
			children[p] = append(children[p], k)
		}
	}
	type acc struct {
		starts, ends, durations []int64
		ops, failedOps          int
	}
	byName := make(map[string]*acc)
	for _, o := range ops {
		root, ok := spans[o.Key]
		if !ok {
			continue // deleted between the two queries
		}
		inThis := make(map[string]bool)
		failedIn := make(map[string]bool)
		stack := slices.Clone(children[o.Key])
		visited := map[opstore.SpanKey]bool{o.Key: true}
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[k] { // a hostile file may hold a cycle
				continue
			}
			visited[k] = true
			stack = append(stack, children[k]...)
			s := spans[k]
			a := byName[s.Name]
			if a == nil {
				a = &acc{}
				byName[s.Name] = a
			}
			a.starts = append(a.starts, s.Start-root.Start)
			a.ends = append(a.ends, s.End-root.Start)
			a.durations = append(a.durations, s.End-s.Start)
			if !inThis[s.Name] {
				inThis[s.Name] = true
				a.ops++
			}
			if s.Failed && !failedIn[s.Name] {
				failedIn[s.Name] = true
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

// underSameOp reports whether a parent of the span k, in spans, carries
// the operation sampled.
func underSameOp(spans map[opstore.SpanKey]opstore.PhaseSpan, k opstore.SpanKey) bool {
	s, ok := spans[k]
	for range len(spans) { // more steps is a loop in the ids
		if !ok || s.Parent == nil {
			return false
		}
		if s, ok = spans[opstore.MakeSpanKey(k[:16], s.Parent)]; ok && s.SameOp {
			return true
		}
	}
	return false
}
