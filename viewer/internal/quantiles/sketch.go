package quantiles

import "math"

// A window of more than ExactLimit operations reports its percentiles
// from sketches (docs/design.md, "Windows and percentiles"): keeping every
// duration of a week of a busy system to sort it would make the viewer's
// memory grow with the file. A sketch counts values in buckets whose
// bounds grow by a factor of sketchGamma, so that any value of a bucket
// is within Alpha of the bucket's representative: the percentile it
// reports is within 1 % of the exact one (nearest rank). Sketches of two
// parts of a window add up to the sketch of the whole, bucket by bucket,
// whatever the order the parts were read in.

const (
	// ExactLimit is the most operations a window may hold for its
	// percentiles to be exact.
	ExactLimit = 1_000_000
	// Alpha is the sketches' relative error bound.
	Alpha = 0.01
)

var (
	sketchGamma  = (1 + Alpha) / (1 - Alpha)
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
// Alpha of the exact one; the first and last ranks are the exact
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
