package viewer

import (
	"context"
	"math"
	"time"

	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
)

// The root's view of the op store (viewer/internal/opstore): a request's
// filter, its window with the exactness of its percentiles, and the
// visits that feed the accumulators.

type (
	// filter is the window and the operation filters of one request.
	filter = opstore.Filter
	// opSpan is an operation span as a visit hands it over.
	opSpan = opstore.Span
	// opVisitor is one aggregate's view of a window's operation spans.
	opVisitor = opstore.Visitor
)

// newFilter returns the filter of q.
func newFilter(q Query) *filter {
	since, until := q.bounds()
	return opstore.NewFilter(since, until, q.Broadcaster, q.Topic, q.Glob)
}

// window is a plan of the store's (opstore.Window) with what the
// aggregates of a request share: its filter, and its count of
// operations for its percentiles' rule (ex; a window holds values only
// while it holds at most exactLimit operations).
type window struct {
	*opstore.Window
	flt *filter
	v   *Viewer
	ex  *quantiles.Exactness
}

// plan reads each file's totals; topics asks for topics and glob
// patterns even when flt does not need them.
func (v *Viewer) plan(ctx context.Context, flt *filter, topics bool) (*window, error) {
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
func (w *window) visit(ctx context.Context, visitors ...opVisitor) error {
	return w.Visit(ctx, w.counted(visitors)...)
}

// chunkLister names the order a visit reads a file's chunks in; the
// root reads them all, in id order (listWindow). The store offers the
// search its own order (opstore.Pass).
type chunkLister struct{}

// listWindow reads every chunk of a file's window, in id order.
var listWindow chunkLister

// visitByFile is visit that calls begin, when not nil, with the index of
// each file before its spans go to the visitors (row ids are a file's
// own).
func (w *window) visitByFile(ctx context.Context, begin func(i int), _ chunkLister, visitors ...opVisitor) error {
	vs := w.counted(visitors)
	return w.VisitFiles(ctx, func(i int) *opstore.Pass {
		if begin != nil {
			begin(i)
		}
		return &opstore.Pass{Visitors: vs}
	})
}

// counted is visitors after one that counts each span in w.ex, first, so
// that a span that takes the window past exactLimit turns every dist into
// a sketch before it is added to any.
func (w *window) counted(visitors []opVisitor) []opVisitor {
	count := func([]string) func(*opSpan) { return func(*opSpan) { w.ex.Count() } }
	return append([]opVisitor{count}, visitors...)
}
