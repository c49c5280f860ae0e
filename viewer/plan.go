package viewer

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
)

// The root's view of the op store (viewer/internal/opstore): a request's
// filter (an opstore.Filter), its window with the exactness of its
// percentiles, and the visits that feed the accumulators.

// newFilter returns the filter of q.
func newFilter(q Query) *opstore.Filter {
	since, until := q.bounds()
	return opstore.NewFilter(since, until, q.Broadcaster, q.Topic, q.Glob)
}

// window is a plan of the store's (opstore.Window) with what the
// aggregates of a request share: its filter, and its count of
// operations for its percentiles' rule (ex; a window holds values only
// while it holds at most exactLimit operations).
type window struct {
	*opstore.Window
	flt *opstore.Filter
	v   *Viewer
	ex  *quantiles.Exactness
}

// plan reads each file's totals; topics asks for topics and glob
// patterns even when flt does not need them.
func (v *Viewer) plan(ctx context.Context, flt *opstore.Filter, topics bool) (*window, error) {
	w, err := v.store.Plan(ctx, flt, topics, v.now)
	if err != nil {
		return nil, err
	}
	return &window{Window: w, flt: flt, v: v, ex: quantiles.NewExactness(v.exact, v.jaeger.partial(time.Unix(0, flt.Since)))}, nil
}

// since returns where the window starts: q.Since, or with since=beginning
// the start of the oldest span stored in any file (Until when there is
// none before it).
func (w *window) since(q Query) time.Time {
	if !q.SinceBeginning {
		return q.Since
	}
	oldest := int64(math.MaxInt64)
	for _, t := range w.Files {
		if t.Summary.Oldest != nil {
			oldest = min(oldest, t.Summary.Oldest.UnixNano())
		}
	}
	if oldest != math.MaxInt64 && oldest < q.Until.UnixNano() {
		return time.Unix(0, oldest).In(q.Location)
	}
	return q.Until
}

// visit hands every operation span of the window that passes the filter
// to each visitor, once (opstore.Window.Visit), and counts it in ex.
func (w *window) visit(ctx context.Context, visitors ...opstore.Visitor) error {
	return w.Visit(ctx, w.counted(visitors)...)
}

// visitWithFile is visit with one more visitor, last, made for each
// file i by perFile(i): the search's totals count a span under its file,
// as row ids are a file's own.
func (w *window) visitWithFile(ctx context.Context, perFile func(i int) opstore.Visitor, visitors ...opstore.Visitor) error {
	vs := w.counted(visitors)
	return w.VisitFiles(ctx, func(i int) *opstore.Pass {
		return &opstore.Pass{Visitors: append(slices.Clip(vs), perFile(i))}
	})
}

// counted is visitors after one that counts each span in w.ex, first, so
// that a span that takes the window past exactLimit turns every dist into
// a sketch before it is added to any.
func (w *window) counted(visitors []opstore.Visitor) []opstore.Visitor {
	count := func([]string) func(*opstore.Span) { return func(*opstore.Span) { w.ex.Count() } }
	return append([]opstore.Visitor{count}, visitors...)
}
