package viewer

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// windowAcc gathers the operation spans of a window, over every file,
// for the Summary's aggregates. To add a measure over all operations:
// a field here or in opAcc, its update in add, its result in the
// Summary or Operation.
type windowAcc struct {
	ops [len(schema.Operations)]opAcc
	// seen holds the keys of the spans added, when the viewer reads
	// several files: the same span can be in two of them (a
	// broadcaster's span that rode home to a subscriber, and the
	// broadcaster's own file), and counts once.
	seen map[spanKey]struct{}
	// broadcasters holds the broadcasters of the notifies added.
	broadcasters map[string]struct{}
}

func newWindowAcc(severalFiles bool) *windowAcc {
	w := &windowAcc{broadcasters: make(map[string]struct{})}
	if severalFiles {
		w.seen = make(map[spanKey]struct{})
	}
	return w
}

// firstSight reports whether the span of key is added for the first
// time; it always is in a viewer of one file.
func (w *windowAcc) firstSight(key spanKey) bool {
	if w.seen == nil {
		return true
	}
	if _, dup := w.seen[key]; dup {
		return false
	}
	w.seen[key] = struct{}{}
	return true
}

// addBroadcaster counts the broadcaster of a notify added.
func (w *windowAcc) addBroadcaster(name string) {
	if name != "" {
		w.broadcasters[name] = struct{}{}
	}
}

// opAcc gathers the spans of one operation for its aggregates.
type opAcc struct {
	count               int64
	bytes               uint64
	stateless, stateful Split
	durations, sizes    []int64
	bySubs              map[int64][]int64
	buckets             [65]int64
	maxBucket           int
	latest              int64
}

func (a *opAcc) add(o *opSpan) {
	if a.count == 0 {
		a.maxBucket, a.latest = -1, math.MinInt64
		a.bySubs = make(map[int64][]int64)
	}
	a.count++
	a.durations = append(a.durations, o.end-o.start)
	a.latest = max(a.latest, o.start)
	split := &a.stateless
	if o.stateful {
		split = &a.stateful
	}
	split.Count++
	if o.size >= 0 {
		a.sizes = append(a.sizes, o.size)
		a.bytes = addSat(a.bytes, uint64(o.size))
		split.Bytes = addSat(split.Bytes, uint64(o.size))
		k := sizeBucket(o.size)
		a.buckets[k]++
		a.maxBucket = max(a.maxBucket, k)
	}
	if o.subs >= 0 {
		a.bySubs[o.subs] = append(a.bySubs[o.subs], o.end-o.start)
	}
}

// operation computes the aggregates of the spans added.
func (a *opAcc) operation(now time.Time) *Operation {
	o := &Operation{Count: a.count, BySubscribers: []SubscriberGroup{}, BySize: []SizeBucket{}, Histogram: []HistogramBin{}}
	if a.count == 0 {
		return o
	}
	o.Bytes, o.Stateless, o.Stateful = a.bytes, a.stateless, a.stateful
	since := nsToMs(now.UnixNano() - a.latest)
	o.SinceMostRecentMs = &since
	o.DurationMs = percentilesOf(a.durations, nsToMs)
	o.SizeBytes = percentilesOf(a.sizes, int64ToFloat)
	for k := 0; k <= a.maxBucket; k++ {
		o.BySize = append(o.BySize, SizeBucket{Below: bucketBelow(k), Count: a.buckets[k]})
	}
	for _, n := range slices.Sorted(maps.Keys(a.bySubs)) {
		d := a.bySubs[n]
		o.BySubscribers = append(o.BySubscribers, SubscriberGroup{Subscribers: n, Count: int64(len(d)), DurationMs: percentilesOf(d, nsToMs)})
	}
	o.Histogram = histogram(a.durations)
	return o
}

// addSat adds, saturating at 2^64-1.
func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// histogram bins sorted durations (ns) by powers of two of microseconds;
// the first bin holds everything below 1 µs, negative durations included.
func histogram(sorted []int64) []HistogramBin {
	bin := func(ns int64) int {
		if ns < 1000 {
			return 0
		}
		return sizeBucket(ns / 1000) // [2^(k-1), 2^k) µs
	}
	lo, hi := bin(sorted[0]), bin(sorted[len(sorted)-1])
	out := make([]HistogramBin, 0, hi-lo+1)
	for k := lo; k <= hi; k++ {
		b := HistogramBin{}
		if k > 0 {
			b.FromMs = float64(uint64(1)<<(k-1)) / 1000
		}
		b.BelowMs = float64(uint64(1)<<k) / 1000
		out = append(out, b)
	}
	for _, d := range sorted {
		out[bin(d)-lo].Count++
	}
	return out
}
