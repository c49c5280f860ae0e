package viewer

import (
	"context"
	"math"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// seriesSteps are the steps a series picks from when the request names
// none: the smallest that cuts the window into at most
// defaultSeriesBuckets.
var seriesSteps = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

const (
	// defaultSeriesBuckets is the most buckets of a default step (a
	// chart the width of the page).
	defaultSeriesBuckets = 120
	// maxSeriesBuckets is the most buckets a named step may make: a day
	// of minutes. A smaller step over a longer window is refused, as its
	// answer would grow without bound.
	maxSeriesBuckets = 1440
)

// seriesLayout is where a series' buckets lie: the first starts at first
// (Unix ns), each is step long, and there are n.
type seriesLayout struct {
	first, step int64
	n           int
}

// layoutSeries cuts [since, until) into buckets of step, or of the
// default step when step is 0 (docs/design.md#failures-services-and-series).
// The default copes with any range: when 24h makes more than
// defaultSeriesBuckets, it is the fewest whole days that do not.
func layoutSeries(since, until int64, step time.Duration) (seriesLayout, error) {
	if step == 0 {
		for _, s := range seriesSteps {
			if l := alignSeries(since, until, int64(s)); l.n <= defaultSeriesBuckets {
				return l, nil
			}
		}
		// span/(buckets-1) leaves room for the bucket the alignment adds.
		const day = uint64(24 * time.Hour)
		days := ceilDiv(ceilDiv(uint64(until)-uint64(since), defaultSeriesBuckets-1), day)
		return alignSeries(since, until, int64(days*day)), nil
	}
	// The window's own length decides, not its alignment: a day of
	// minutes works whatever second it starts on. until-since may not fit
	// in int64 (a range from 1678 to 2261), but does in uint64.
	if until > since && uint64(until)-uint64(since) > maxSeriesBuckets*uint64(step) {
		n := ceilDiv(uint64(until)-uint64(since), uint64(step))
		return seriesLayout{}, stepTooFine(step, n)
	}
	return alignSeries(since, until, int64(step)), nil
}

// alignSeries lays out buckets of step from since rounded down to a
// multiple of step since the Unix epoch, up to the last that meets until.
func alignSeries(since, until, step int64) seriesLayout {
	first := since / step * step
	if first > since { // since before 1970: round down, not toward 0
		if first-step > first { // and within a step of 1678: no room to round
			first = since
		} else {
			first -= step
		}
	}
	l := seriesLayout{first: first, step: step}
	if until > since {
		n := ceilDiv(uint64(until)-uint64(first), uint64(step))
		l.n = int(min(n, math.MaxInt32)) // the callers keep n small
	}
	return l
}

// ceilDiv is a/b rounded up, without overflow.
func ceilDiv(a, b uint64) uint64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// seriesAcc gathers the operation spans of a window by bucket.
type seriesAcc struct {
	layout  seriesLayout
	buckets [][len(schema.Operations)]groupAcc
}

func newSeriesAcc(l seriesLayout, ex *quantiles.Exactness) *seriesAcc {
	a := &seriesAcc{layout: l, buckets: make([][len(schema.Operations)]groupAcc, l.n)}
	for i := range a.buckets {
		for j := range a.buckets[i] {
			a.buckets[i][j].durations = quantiles.NewDist(ex)
		}
	}
	return a
}

// visitor is the seriesAcc's opstore.Visitor.
func (a *seriesAcc) visitor([]string) func(*opstore.Span) {
	return func(o *opstore.Span) {
		i := (uint64(o.Start) - uint64(a.layout.first)) / uint64(a.layout.step)
		if i < uint64(len(a.buckets)) { // always, for a span of the window
			a.buckets[i][o.Op].add(o)
		}
	}
}

// series returns the Series of the spans added; since and until are the
// window, reported in loc.
func (a *seriesAcc) series(since, until time.Time, loc *time.Location) *model.Series {
	s := &model.Series{Since: since, Until: until, StepMs: a.layout.step / 1e6, Buckets: make([]model.SeriesBucket, 0, len(a.buckets))}
	for i := range a.buckets {
		b := model.SeriesBucket{Start: time.Unix(0, a.layout.first+int64(i)*a.layout.step).In(loc), Ops: make(map[string]*model.SeriesPoint, len(schema.Operations))}
		for j, op := range schema.Operations {
			g := &a.buckets[i][j]
			p := &model.SeriesPoint{Count: g.count, Errors: g.errors, Bytes: g.bytes, Approximate: g.count > 0 && g.approximate()}
			if pc := g.percentiles(); pc != nil {
				p50, p99 := pc.P50(), pc.P99()
				p.P50Ms, p.P99Ms = &p50, &p99
			}
			b.Ops[op] = p
		}
		s.Buckets = append(s.Buckets, b)
	}
	return s
}

// seriesFor returns the accumulator of the series of q over w with step
// (0 for the default).
func seriesFor(ctx context.Context, w *window, q Query, step time.Duration) (*seriesAcc, error) {
	// The range of the window's operations, in any file and whatever
	// the filters, so that a short run in a long window gets a step of
	// its own; the window itself when it has none.
	since, until := w.since(q).UnixNano(), q.Until.UnixNano()
	lo, hi, ok, err := w.OpRange(ctx, since, until)
	if err != nil {
		return nil, err
	}
	if !ok {
		lo, hi = since, until
	}
	l, err := layoutSeries(lo, hi, step)
	if err != nil {
		return nil, err
	}
	return newSeriesAcc(l, w.ex), nil
}

// Series computes the series of q's window and filters in buckets of
// q's step (the answer of /api/series). A bad query is a *ParseError.
func (v *Viewer) Series(ctx context.Context, q SeriesQuery) (*model.Series, error) {
	if err := q.check(v.loc); err != nil {
		return nil, err
	}
	if err := checkStep(q.Step, q.Step.String()); err != nil {
		return nil, err
	}
	w, err := v.plan(ctx, newFilter(q.Query), false)
	if err != nil {
		return nil, err
	}
	acc, err := seriesFor(ctx, w, q.Query, q.Step)
	if err != nil {
		return nil, err
	}
	if err := w.visit(ctx, acc.visitor); err != nil {
		return nil, err
	}
	s := acc.series(w.since(q.Query), q.Until, q.Location)
	s.Coverage = v.jaeger.coverage(time.Unix(0, w.flt.Since))
	return s, nil
}
