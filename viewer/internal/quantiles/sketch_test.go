package quantiles

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// sketchCases are distributions of durations in nanoseconds and sizes in
// bytes, the kinds the viewer sketches, and some it must survive.
func sketchCases() map[string][]int64 {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func(n int, f func() int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = f()
		}
		return out
	}
	const n = 200_000
	return map[string][]int64{
		"uniform":     gen(n, func() int64 { return 1 + rng.Int64N(10_000_000) }),
		"exponential": gen(n, func() int64 { return int64(rng.ExpFloat64() * 2e6) }),
		"lognormal":   gen(n, func() int64 { return int64(math.Exp(rng.NormFloat64()*2 + 14)) }),
		"bimodal": gen(n, func() int64 {
			if rng.IntN(10) == 0 {
				return 5e9 + rng.Int64N(1e9)
			}
			return 2e5 + rng.Int64N(1e5)
		}),
		"constant":    gen(n, func() int64 { return 1_234_567 }),
		"small":       gen(n, func() int64 { return rng.Int64N(20) }),
		"sizes":       gen(n, func() int64 { return int64(rng.ExpFloat64() * 2000) }),
		"signed":      gen(n, func() int64 { return rng.Int64N(2e6) - 1e6 }),
		"extremes":    {math.MinInt64, -1, 0, 1, math.MaxInt64, math.MaxInt64 - 1, math.MinInt64 + 1},
		"few":         {7},
		"powers of γ": gen(5000, func() int64 { return int64(math.Pow(sketchGamma, float64(rng.IntN(1500)))) }),
	}
}

// TestSketch_RelativeError checks every reported percentile of a sketch
// against the exact nearest rank of the sorted values, sorted here.
func TestSketch_RelativeError(t *testing.T) {
	for name, values := range sketchCases() {
		t.Run(name, func(t *testing.T) {
			var s sketch
			for _, v := range values {
				s.add(v)
			}
			sorted := slices.Clone(values)
			slices.Sort(sorted)
			for _, tenths := range model.PercentileTenths {
				// 1-based rank ceil(p/100·n), at least 1, computed apart
				// from Rank().
				r := int(math.Ceil(float64(tenths) * float64(len(sorted)) / 1000))
				r = max(r, 1)
				want := float64(sorted[r-1])
				got := s.at(int64(r - 1))
				if err := math.Abs(got - want); err > Alpha*math.Abs(want)*(1+1e-9) {
					t.Errorf("p%.1f = %g; want %g within %g%% (error %.4g%%)", float64(tenths)/10, got, want, 100*Alpha, 100*err/math.Abs(want))
				}
			}
			if s.n != int64(len(values)) {
				t.Errorf("n = %d; want %d", s.n, len(values))
			}
		})
	}
}

// TestSketch_Merge checks that a sketch of parts merged is the sketch of
// the whole, in any order of the parts.
func TestSketch_Merge(t *testing.T) {
	values := sketchCases()["lognormal"]
	values = append(values, sketchCases()["signed"][:1000]...)
	var whole sketch
	for _, v := range values {
		whole.add(v)
	}
	parts := make([]sketch, 7)
	for i, v := range values {
		parts[(i*31)%len(parts)].add(v)
	}
	var merged sketch
	for i := len(parts) - 1; i >= 0; i-- {
		merged.merge(&parts[i])
	}
	merged.merge(&sketch{})
	for r := int64(0); r < whole.n; r += 997 {
		if got, want := merged.at(r), whole.at(r); got != want {
			t.Fatalf("merged rank %d = %g; want %g", r, got, want)
		}
	}
	if merged.n != whole.n || merged.min != whole.min || merged.max != whole.max {
		t.Errorf("merged n, min, max = %d, %d, %d; want %d, %d, %d", merged.n, merged.min, merged.max, whole.n, whole.min, whole.max)
	}
}

// TestDist_ExactUntilApproximate checks that a dist is the exact nearest
// rank until it is made approximate, and within the bound after.
func TestDist_ExactUntilApproximate(t *testing.T) {
	values := sketchCases()["exponential"][:50_001]
	var d Dist
	for _, v := range values {
		d.Add(v)
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	id := func(f float64) float64 { return f }
	// percentiles is Dist.Percentiles of model's tenths, nil for none.
	percentiles := func(d *Dist) *model.Percentiles {
		var p model.Percentiles
		if !d.Percentiles(p[:], model.PercentileTenths[:], id) {
			return nil
		}
		return &p
	}
	p := percentiles(&d)
	for i, tenths := range model.PercentileTenths {
		r := max(int(math.Ceil(float64(tenths)*float64(len(sorted))/1000)), 1)
		if want := float64(sorted[r-1]); p[i] != want {
			t.Errorf("exact %s = %g; want %g", model.PercentileNames[i], p[i], want)
		}
	}
	d.approximate()
	if d.values != nil || d.Count() != int64(len(values)) {
		t.Fatalf("approximate: values kept %d, count %d; want none, %d", len(d.values), d.Count(), len(values))
	}
	p = percentiles(&d)
	for i, tenths := range model.PercentileTenths {
		r := max(int(math.Ceil(float64(tenths)*float64(len(sorted))/1000)), 1)
		if want := float64(sorted[r-1]); math.Abs(p[i]-want) > Alpha*want*(1+1e-9) {
			t.Errorf("approximate %s = %g; want %g within 1%%", model.PercentileNames[i], p[i], want)
		}
	}
	if percentiles(&d) == nil || percentiles(&Dist{}) != nil {
		t.Error("percentiles of nothing should be nil, of something not")
	}
}
