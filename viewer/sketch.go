package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"math"
	"slices"
)

// A window of more than exactLimit operations reports its percentiles
// from sketches (docs/design.md, "Windows and percentiles"): keeping every
// duration of a week of a busy system to sort it would make the viewer's
// memory grow with the file. A sketch counts values in buckets whose
// bounds grow by a factor of sketchGamma, so that any value of a bucket
// is within sketchAlpha of the bucket's representative: the percentile it
// reports is within 1 % of the exact one (nearest rank). Sketches of two
// parts of a window add up to the sketch of the whole, bucket by bucket,
// whatever the order the parts were read in.

const (
	// exactLimit is the most operations a window may hold for its
	// percentiles to be exact.
	exactLimit = 1_000_000
	// sketchAlpha is the sketches' relative error bound.
	sketchAlpha = 0.01
)

var (
	sketchGamma  = (1 + sketchAlpha) / (1 - sketchAlpha)
	sketchLogInv = 1 / math.Log(sketchGamma)
)

// sketch counts int64 values in logarithmic buckets: bucket k > 0 of
// positives holds values in (γ^(k-1), γ^k]; negatives are counted by
// their magnitude the same way; zero on its own. Min and max are exact.
type sketch struct {
	pos, neg store
	zero     int64
	n        int64
	min, max int64
}

// store is a dense run of bucket counts from index off.
type store struct {
	off    int
	counts []int64
}

// sketchIndex is the bucket of a value v ≥ 1.
func sketchIndex(v int64) int {
	return int(math.Ceil(math.Log(float64(v)) * sketchLogInv))
}

// sketchValue is the representative of bucket k: the value with the same
// relative distance to both bounds, 2γ^k/(γ+1).
func sketchValue(k int) float64 {
	return 2 * math.Pow(sketchGamma, float64(k)) / (sketchGamma + 1)
}

func (s *store) add(k int, n int64) {
	if len(s.counts) == 0 {
		s.off = k
		s.counts = append(s.counts, 0)
	}
	if k < s.off {
		grow := s.off - k
		s.counts = append(make([]int64, grow, grow+len(s.counts)), s.counts...)
		s.off = k
	}
	if i := k - s.off; i >= len(s.counts) {
		s.counts = append(s.counts, make([]int64, i-len(s.counts)+1)...)
	}
	s.counts[k-s.off] += n
}

func (s *store) merge(o *store) {
	for i, c := range o.counts {
		if c != 0 {
			s.add(o.off+i, c)
		}
	}
}

// add counts v.
func (s *sketch) add(v int64) {
	if s.n == 0 {
		s.min, s.max = v, v
	}
	s.n++
	s.min, s.max = min(s.min, v), max(s.max, v)
	switch {
	case v > 0:
		s.pos.add(sketchIndex(v), 1)
	case v < 0:
		if v == math.MinInt64 {
			v++ // its magnitude has no int64; one off is well within α
		}
		s.neg.add(sketchIndex(-v), 1)
	default:
		s.zero++
	}
}

// merge adds o's counts to s.
func (s *sketch) merge(o *sketch) {
	if o.n == 0 {
		return
	}
	if s.n == 0 {
		s.min, s.max = o.min, o.max
	}
	s.n += o.n
	s.min, s.max = min(s.min, o.min), max(s.max, o.max)
	s.zero += o.zero
	s.pos.merge(&o.pos)
	s.neg.merge(&o.neg)
}

// at returns the value at 0-based rank r of the n counted, within
// sketchAlpha of the exact one; the first and last ranks are the exact
// minimum and maximum.
func (s *sketch) at(r int64) float64 {
	switch {
	case r <= 0:
		return float64(s.min)
	case r >= s.n-1:
		return float64(s.max)
	}
	// Negatives first, the largest magnitude first; then zero; then
	// positives from the smallest up.
	for i := len(s.neg.counts) - 1; i >= 0; i-- {
		if r -= s.neg.counts[i]; r < 0 {
			return s.clamp(-sketchValue(s.neg.off + i))
		}
	}
	if r -= s.zero; r < 0 {
		return 0
	}
	for i, c := range s.pos.counts {
		if r -= c; r < 0 {
			return s.clamp(sketchValue(s.pos.off + i))
		}
	}
	return float64(s.max)
}

// clamp keeps an estimate within the exact minimum and maximum, which can
// only bring it nearer the exact value.
func (s *sketch) clamp(v float64) float64 {
	return min(max(v, float64(s.min)), float64(s.max))
}

// exactness is a window's count of operations, against the most it may
// hold for exact percentiles. Every dist of the window's aggregates
// shares it: once the window holds more, each of them turns its values
// into a sketch at its next value or when asked for percentiles, so the
// values kept for exact percentiles never outnumber the first limit
// operations (times the few measures each feeds).
type exactness struct {
	limit, ops int64
	// partial is set when the window is not all in the file: a viewer
	// over Jaeger whose fetch stopped short (jaeger.go). Every figure is
	// then approximate.
	partial bool
	// dists are those holding values, until the window goes over.
	dists []*dist
}

// count counts one more operation of the window; the one that takes it
// over the limit turns every dist's values into a sketch at once, so
// that none keeps them until the end for want of another value.
func (e *exactness) count() {
	e.ops++
	if e.ops == e.limit+1 {
		for _, d := range e.dists {
			d.approximate()
		}
		e.dists = nil
	}
}

// over reports whether the window holds too many operations for exact
// percentiles; a nil exactness never does.
func (e *exactness) over() bool { return e != nil && e.ops > e.limit }

// dist gathers a set of int64 values for their percentiles: every value
// while its window is exact (ex), a sketch once it is not.
type dist struct {
	values []int64
	sk     *sketch
	ex     *exactness
}

func (d *dist) add(v int64) {
	if d.sk == nil && d.ex.over() {
		d.approximate()
	}
	if d.sk != nil {
		d.sk.add(v)
		return
	}
	if len(d.values) == 0 && d.ex != nil {
		d.ex.dists = append(d.ex.dists, d)
	}
	d.values = append(d.values, v)
}

// count is how many values were added.
func (d *dist) count() int64 {
	if d.sk != nil {
		return d.sk.n
	}
	return int64(len(d.values))
}

// approximate moves the values into a sketch, for good.
func (d *dist) approximate() {
	if d.sk != nil {
		return
	}
	d.sk = &sketch{}
	for _, v := range d.values {
		d.sk.add(v)
	}
	d.values = nil
}

// approximated reports whether d's percentiles come from a sketch.
func (d *dist) approximated() bool { return d.sk != nil || d.ex.over() || d.ex != nil && d.ex.partial }

// percentiles returns the reported percentiles converted by conv, nil
// when there are no values; exact values are sorted in place.
func (d *dist) percentiles(conv func(float64) float64) *model.Percentiles {
	if d.sk == nil && d.ex.over() {
		d.approximate()
	}
	n := d.count()
	if n == 0 {
		return nil
	}
	var p model.Percentiles
	if d.sk == nil {
		slices.Sort(d.values)
		for i, t := range model.PercentileTenths {
			p[i] = conv(float64(d.values[rank(t, len(d.values))]))
		}
		return &p
	}
	for i, t := range model.PercentileTenths {
		p[i] = conv(d.sk.at(int64(rank(t, int(n)))))
	}
	return &p
}
