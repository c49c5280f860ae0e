package viewer

import (
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// windowAcc gathers the operation spans of a window, over every file,
// for the Summary's aggregates. A read task fills one of its own, merged
// into the window's when the task ends, so that memory holds the spans of
// the tasks under way, not of the window. To add a measure over all
// operations: a field here or in opAcc, its update in add, its merge, its
// result in the Summary or Operation.
type windowAcc struct {
	// limit is the most operations whose values are kept for exact
	// percentiles: exactLimit, but for tests.
	limit int64
	ops   [len(schema.Operations)]opAcc
	// broadcasters holds the broadcasters of the notifies added.
	broadcasters map[string]struct{}
}

func newWindowAcc(limit int64) *windowAcc {
	return &windowAcc{limit: limit, broadcasters: make(map[string]struct{})}
}

// addBatch adds the operation spans of b that are in flt's window and
// pass keep (nil keeps all), and that seen has not seen; strs are the
// strings b's spans number.
func (w *windowAcc) addBatch(b *batchOps, strs []string, flt *filter, keep func(*opSpan) bool, seen *seenSpans) {
	within := b.batch.Within(flt.since, flt.until)
	var first []bool
	if b.keys != nil && seen != nil {
		first = seen.firstSights(b, within, flt, keep)
	}
	var notified []bool
	for j := range b.ops {
		o := &b.ops[j]
		if first != nil {
			if !first[j] {
				continue
			}
		} else if !within && !flt.inWindow(o.start) || keep != nil && !keep(o) {
			continue
		}
		w.ops[o.op].add(o)
		if o.op == schema.NotifyIndex && o.broadcaster != 0 {
			if notified == nil {
				notified = make([]bool, len(strs))
			}
			notified[o.broadcaster] = true
		}
	}
	for id, ok := range notified {
		if ok {
			w.addBroadcaster(strs[id])
		}
	}
}

// seenSpans holds the keys of the spans added, when the viewer reads
// several files: the same span can be in two of them (a broadcaster's
// span that rode home to a subscriber, and the broadcaster's own file),
// and counts once.
type seenSpans struct {
	mu   sync.Mutex
	keys map[spanKey]struct{}
}

// firstSights returns, for each span of b, whether it is in the window,
// passes keep and is seen for the first time.
func (s *seenSpans) firstSights(b *batchOps, within bool, flt *filter, keep func(*opSpan) bool) []bool {
	out := make([]bool, len(b.ops))
	s.mu.Lock()
	defer s.mu.Unlock()
	for j := range b.ops {
		o := &b.ops[j]
		if !within && !flt.inWindow(o.start) || keep != nil && !keep(o) {
			continue
		}
		if _, dup := s.keys[b.keys[j]]; dup {
			continue
		}
		s.keys[b.keys[j]] = struct{}{}
		out[j] = true
	}
	return out
}

// count is how many operations were added.
func (w *windowAcc) count() int64 {
	var n int64
	for i := range w.ops {
		n += w.ops[i].count
	}
	return n
}

// merge adds what o gathered to w. A window of more than exactLimit operations keeps sketches from then on.
func (w *windowAcc) merge(o *windowAcc) {
	for i := range w.ops {
		w.ops[i].merge(&o.ops[i])
	}
	for b := range o.broadcasters {
		w.broadcasters[b] = struct{}{}
	}
	if w.count() > w.limit {
		for i := range w.ops {
			w.ops[i].approximate()
		}
	}
}

// clone returns a deep copy of w.
func (w *windowAcc) clone() *windowAcc {
	c := &windowAcc{limit: w.limit, broadcasters: maps.Clone(w.broadcasters)}
	for i := range w.ops {
		c.ops[i] = w.ops[i].clone()
	}
	return c
}

// sortValues sorts the values w keeps for exact percentiles: a memo's
// are sorted once, so that the requests that start from it sort values
// that are in order but for the few they add.
func (w *windowAcc) sortValues() {
	for i := range w.ops {
		a := &w.ops[i]
		slices.Sort(a.durations.values)
		slices.Sort(a.sizes.values)
		for _, d := range a.bySubs {
			slices.Sort(d.values)
		}
	}
}

// exactValues is how many values w keeps for exact percentiles.
func (w *windowAcc) exactValues() int {
	n := 0
	for i := range w.ops {
		a := &w.ops[i]
		n += len(a.durations.values) + len(a.sizes.values)
		for _, d := range a.bySubs {
			n += len(d.values)
		}
	}
	return n
}

// addBroadcaster counts the broadcaster of a notify added.
func (w *windowAcc) addBroadcaster(name string) {
	if name != "" {
		w.broadcasters[name] = struct{}{}
	}
}

// opAcc gathers the spans of one operation for its aggregates. Every
// measure is mergeable: accumulators of parts of a window, read in any
// order, merge into the accumulator of the whole.
type opAcc struct {
	count               int64
	bytes               uint64
	stateless, stateful Split
	durations, sizes    dist
	bySubs              map[int64]*dist
	buckets             [65]int64
	maxBucket           int
	// bins counts durations in the histogram's bins (see durationBin).
	bins   [65]int64
	latest int64
}

func (a *opAcc) init() {
	a.maxBucket, a.latest = -1, math.MinInt64
	a.bySubs = make(map[int64]*dist)
}

func (a *opAcc) add(o *opSpan) {
	if a.count == 0 {
		a.init()
	}
	a.count++
	d := o.end - o.start
	a.durations.add(d)
	a.bins[durationBin(d)]++
	a.latest = max(a.latest, o.start)
	split := &a.stateless
	if o.stateful {
		split = &a.stateful
	}
	split.Count++
	if o.size >= 0 {
		a.sizes.add(o.size)
		a.bytes = addSat(a.bytes, uint64(o.size))
		split.Bytes = addSat(split.Bytes, uint64(o.size))
		k := sizeBucket(o.size)
		a.buckets[k]++
		a.maxBucket = max(a.maxBucket, k)
	}
	if o.subs >= 0 {
		g := a.bySubs[o.subs]
		if g == nil {
			g = &dist{}
			if a.durations.sk != nil {
				g.approximate()
			}
			a.bySubs[o.subs] = g
		}
		g.add(d)
	}
}

// merge adds what o gathered to a.
func (a *opAcc) merge(o *opAcc) {
	if o.count == 0 {
		return
	}
	if a.count == 0 {
		a.init()
	}
	a.count += o.count
	a.bytes = addSat(a.bytes, o.bytes)
	a.stateless.Count += o.stateless.Count
	a.stateless.Bytes = addSat(a.stateless.Bytes, o.stateless.Bytes)
	a.stateful.Count += o.stateful.Count
	a.stateful.Bytes = addSat(a.stateful.Bytes, o.stateful.Bytes)
	a.durations.merge(&o.durations)
	a.sizes.merge(&o.sizes)
	for n, d := range o.bySubs {
		g := a.bySubs[n]
		if g == nil {
			g = &dist{}
			a.bySubs[n] = g
		}
		g.merge(d)
	}
	for k := range a.buckets {
		a.buckets[k] += o.buckets[k]
		a.bins[k] += o.bins[k]
	}
	a.maxBucket = max(a.maxBucket, o.maxBucket)
	a.latest = max(a.latest, o.latest)
}

// approximate turns every set of values into a sketch.
func (a *opAcc) approximate() {
	a.durations.approximate()
	a.sizes.approximate()
	for _, d := range a.bySubs {
		d.approximate()
	}
}

// clone returns a deep copy of a.
func (a *opAcc) clone() opAcc {
	c := *a
	c.durations, c.sizes = a.durations.clone(), a.sizes.clone()
	if a.bySubs != nil {
		c.bySubs = make(map[int64]*dist, len(a.bySubs))
		for n, d := range a.bySubs {
			dc := d.clone()
			c.bySubs[n] = &dc
		}
	}
	return c
}

// operation computes the aggregates of the spans added.
func (a *opAcc) operation(now time.Time) *Operation {
	o := &Operation{Count: a.count, BySubscribers: []SubscriberGroup{}, BySize: []SizeBucket{}, Histogram: []HistogramBin{}}
	if a.count == 0 {
		return o
	}
	o.Approximate = a.durations.sk != nil
	o.Bytes, o.Stateless, o.Stateful = a.bytes, a.stateless, a.stateful
	since := nsToMs(now.UnixNano() - a.latest)
	o.SinceMostRecentMs = &since
	o.DurationMs = a.durations.percentiles(msOfNs)
	o.SizeBytes = a.sizes.percentiles(same)
	for k := 0; k <= a.maxBucket; k++ {
		o.BySize = append(o.BySize, SizeBucket{Below: bucketBelow(k), Count: a.buckets[k]})
	}
	for _, n := range slices.Sorted(maps.Keys(a.bySubs)) {
		d := a.bySubs[n]
		o.BySubscribers = append(o.BySubscribers, SubscriberGroup{Subscribers: n, Count: d.count(), DurationMs: d.percentiles(msOfNs), Approximate: d.sk != nil})
	}
	o.Histogram = histogram(&a.bins)
	return o
}

func msOfNs(ns float64) float64 { return ns / 1e6 }

func same(v float64) float64 { return v }

// addSat adds, saturating at 2^64-1.
func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

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
func histogram(bins *[65]int64) []HistogramBin {
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
		return []HistogramBin{}
	}
	out := make([]HistogramBin, 0, hi-lo+1)
	for k := lo; k <= hi; k++ {
		b := HistogramBin{Count: bins[k]}
		if k > 0 {
			b.FromMs = float64(uint64(1)<<(k-1)) / 1000
		}
		b.BelowMs = float64(uint64(1)<<k) / 1000
		out = append(out, b)
	}
	return out
}
