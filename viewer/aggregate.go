package viewer

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// windowAcc gathers the operation spans of a window for the Summary's
// aggregates. To add a measure over all operations: a field here or in
// opAcc, its update in add, its result in the Summary or Operation; a
// set of values for percentiles is a quantiles.Dist that shares the
// window's Exactness.
type windowAcc struct {
	ops [len(schema.Operations)]opAcc
	// broadcasters holds the broadcasters of the notifies added.
	broadcasters map[string]struct{}
}

func newWindowAcc(ex *quantiles.Exactness) *windowAcc {
	w := &windowAcc{broadcasters: make(map[string]struct{})}
	for i := range w.ops {
		a := &w.ops[i]
		a.durations, a.sizes = quantiles.NewDist(ex), quantiles.NewDist(ex)
		a.maxBucket, a.latest = -1, math.MinInt64
		a.bySubs = make(map[int64]*groupAcc)
	}
	return w
}

// visitor is the windowAcc's opstore.Visitor.
func (w *windowAcc) visitor(strs []string) func(*opstore.Span) {
	notified := make([]bool, len(strs))
	return func(o *opstore.Span) {
		w.ops[o.Op].add(o)
		if o.Op == schema.NotifyIndex && !notified[o.Broadcaster] {
			notified[o.Broadcaster] = true
			if o.Broadcaster != 0 {
				w.broadcasters[strs[o.Broadcaster]] = struct{}{}
			}
		}
	}
}

// groupAcc gathers the measures of one group of operation spans: a
// bucket of a series, a row of a breakdown, an edge of the map, the
// notifies that reached a number of subscribers. Its durations are the
// only part that grows with the spans, while the window is exact.
type groupAcc struct {
	count, errors int64
	// bytes sums the meaningful bytes, saturating at 2^64-1.
	bytes     uint64
	durations quantiles.Dist
}

// newGroupAcc returns a groupAcc of a window of exactness ex.
func newGroupAcc(ex *quantiles.Exactness) *groupAcc {
	return &groupAcc{durations: quantiles.NewDist(ex)}
}

func (g *groupAcc) add(o *opstore.Span) {
	g.count++
	if o.Failed {
		g.errors++
	}
	if o.Size >= 0 {
		g.bytes = opstore.SatAdd(g.bytes, uint64(o.Size))
	}
	g.durations.Add(o.End - o.Start)
}

// percentiles returns the duration percentiles in ms, nil for no span.
func (g *groupAcc) percentiles() *model.Percentiles { return percentiles(&g.durations, nsToMs) }

// approximate reports whether the percentiles come from a sketch.
func (g *groupAcc) approximate() bool { return g.durations.Approximated() }

// opAcc gathers the spans of one operation for its aggregates.
type opAcc struct {
	count, errors       int64
	bytes               uint64
	stateless, stateful model.Split
	durations, sizes    quantiles.Dist
	bySubs              map[int64]*groupAcc
	buckets             [65]int64
	maxBucket           int
	// bins counts durations in the histogram's bins (durationBin).
	bins   [65]int64
	latest int64
}

func (a *opAcc) add(o *opstore.Span) {
	a.count++
	if o.Failed {
		a.errors++
	}
	d := o.End - o.Start
	a.durations.Add(d)
	a.bins[durationBin(d)]++
	a.latest = max(a.latest, o.Start)
	split := &a.stateless
	if o.Stateful {
		split = &a.stateful
	}
	split.Count++
	if o.Size >= 0 {
		a.sizes.Add(o.Size)
		a.bytes = opstore.SatAdd(a.bytes, uint64(o.Size))
		split.Bytes = opstore.SatAdd(split.Bytes, uint64(o.Size))
		k := sizeBucket(o.Size)
		a.buckets[k]++
		a.maxBucket = max(a.maxBucket, k)
	}
	if o.Subs >= 0 {
		g := a.bySubs[o.Subs]
		if g == nil {
			g = newGroupAcc(a.durations.Exactness())
			a.bySubs[o.Subs] = g
		}
		g.add(o)
	}
}

// operation computes the aggregates of the spans added.
func (a *opAcc) operation(now time.Time) *model.Operation {
	o := &model.Operation{Count: a.count, BySubscribers: []model.SubscriberGroup{}, BySize: []model.SizeBucket{}, Histogram: []model.HistogramBin{}}
	if a.count == 0 {
		// None in a window not all fetched is not a known none.
		o.Approximate = a.durations.Exactness().Partial()
		return o
	}
	o.Errors, o.Bytes, o.Stateless, o.Stateful = a.errors, a.bytes, a.stateless, a.stateful
	since := nsToMs(now.UnixNano() - a.latest)
	o.SinceMostRecentMs = &since
	o.DurationMs = percentiles(&a.durations, nsToMs)
	o.SizeBytes = percentiles(&a.sizes, same)
	o.Approximate = a.durations.Approximated()
	for k := 0; k <= a.maxBucket; k++ {
		o.BySize = append(o.BySize, model.SizeBucket{Below: bucketBelow(k), Count: a.buckets[k]})
	}
	for _, n := range slices.Sorted(maps.Keys(a.bySubs)) {
		g := a.bySubs[n]
		o.BySubscribers = append(o.BySubscribers, model.SubscriberGroup{Subscribers: n, Count: g.count, Errors: g.errors, DurationMs: g.percentiles(), Approximate: g.approximate()})
	}
	o.Histogram = histogram(&a.bins)
	return o
}

// percentiles returns the percentiles of d that the API reports,
// converted by conv, nil when d holds no value.
func percentiles(d *quantiles.Dist, conv func(float64) float64) *model.Percentiles {
	var p model.Percentiles
	if !d.Percentiles(p[:], model.PercentileTenths[:], conv) {
		return nil
	}
	return &p
}

// percentilesOf sorts values and returns the percentiles the API reports,
// converted by conv (nsToMs for durations), nil when there are none.
func percentilesOf[T cmp.Ordered](values []T, conv func(T) float64) *model.Percentiles {
	var p model.Percentiles
	if !quantiles.Of(p[:], values, model.PercentileTenths[:], conv) {
		return nil
	}
	return &p
}

// nsToMs turns nanoseconds into milliseconds.
func nsToMs[T int64 | float64](ns T) float64 { return float64(ns) / 1e6 }

func same(v float64) float64 { return v }

// durationBin is the histogram's bin of a duration (ns): the first bin
// holds everything below 1 µs, negative durations included; bin k > 0
// holds [2^(k-1), 2^k) µs.
func durationBin(ns int64) int {
	if ns < 1000 {
		return 0
	}
	return sizeBucket(ns / 1000)
}

// histogram lists the bins from the first non-empty one to the last.
func histogram(bins *[65]int64) []model.HistogramBin {
	lo, hi := -1, -1
	for k, n := range bins {
		if n > 0 {
			if lo < 0 {
				lo = k
			}
			hi = k
		}
	}
	if lo < 0 {
		return []model.HistogramBin{}
	}
	out := make([]model.HistogramBin, 0, hi-lo+1)
	for k := lo; k <= hi; k++ {
		b := model.HistogramBin{Count: bins[k]}
		if k > 0 {
			b.FromMs = float64(uint64(1)<<(k-1)) / 1000
		}
		b.BelowMs = float64(uint64(1)<<k) / 1000
		out = append(out, b)
	}
	return out
}
