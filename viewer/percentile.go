package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"cmp"

	"slices"
)

// rank returns the 0-based index of percentile tenths (of a percent) among
// n sorted values: 1-based ceil(tenths/1000·n), at least 1.
func rank(tenths int64, n int) int {
	r := (tenths*int64(n) + 999) / 1000
	if r < 1 {
		r = 1
	}
	return int(r) - 1
}

// percentilesOf sorts values and returns their percentiles converted by
// conv (nsToMs for durations), or nil when there are none.
func percentilesOf[T cmp.Ordered](values []T, conv func(T) float64) *model.Percentiles {
	if len(values) == 0 {
		return nil
	}
	slices.Sort(values)
	var p model.Percentiles
	for i, t := range model.PercentileTenths {
		p[i] = conv(values[rank(t, len(values))])
	}
	return &p
}

// nsToMs turns nanoseconds into milliseconds.
func nsToMs(ns int64) float64 { return float64(ns) / 1e6 }
