package viewer

import (
	"math"
	"math/bits"
	"testing"
	"time"
)

// TestLayoutSeries_AnyTimes checks that the default step lays out any
// range of stored times, from 1678 to 2261, in at most 120 buckets that
// cover it, and that a named step over the same range is refused.
func TestLayoutSeries_AnyTimes(t *testing.T) {
	for _, c := range []struct{ since, until int64 }{
		{math.MinInt64, math.MaxInt64},
		{math.MinInt64, math.MinInt64 + 5},
		{math.MinInt64 + 5, 0},
		{0, math.MaxInt64},
		{-1, 1},
		{math.MaxInt64 - 1, math.MaxInt64},
	} {
		l, err := layoutSeries(c.since, c.until, 0)
		if err != nil {
			t.Errorf("[%d, %d): %v", c.since, c.until, err)
			continue
		}
		// The buckets cover the range: the first starts at or before
		// since, and the n of them reach until (their length in 128 bits,
		// as it may pass 2^64).
		hi, lo := bits.Mul64(uint64(l.n), uint64(l.step))
		covers := hi > 0 || lo >= uint64(c.until)-uint64(l.first)
		if l.n < 1 || l.n > defaultSeriesBuckets || l.first > c.since || !covers {
			t.Errorf("[%d, %d): first %d, step %s, %d buckets; want at most %d covering the range", c.since, c.until, l.first, time.Duration(l.step), l.n, defaultSeriesBuckets)
		}
	}
	if _, err := layoutSeries(math.MinInt64, math.MaxInt64, time.Minute); err == nil {
		t.Error("a minute step over 583 years: no error")
	}
}
