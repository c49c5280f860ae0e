package quantiles

import (
	"cmp"
	"slices"
)

// Rank returns the 0-based index of percentile tenths (of a percent) among
// n sorted values: 1-based ceil(tenths/1000·n), at least 1.
func Rank(tenths int64, n int) int {
	r := (tenths*int64(n) + 999) / 1000
	if r < 1 {
		r = 1
	}
	return int(r) - 1
}

// Of sorts values in place and writes into dst[i] the percentile
// tenths[i] converted by conv; it reports false, writing nothing, when
// there are no values. dst must be as long as tenths.
func Of[T cmp.Ordered](dst []float64, values []T, tenths []int64, conv func(T) float64) bool {
	if len(values) == 0 {
		return false
	}
	slices.Sort(values)
	for i, t := range tenths {
		dst[i] = conv(values[Rank(t, len(values))])
	}
	return true
}
