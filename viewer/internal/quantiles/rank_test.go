package quantiles_test

import (
	"testing"

	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
)

func TestRank(t *testing.T) {
	// 0-based index of p (in tenths of a percent) among n values, worked
	// out from ceil(p/100*n) by hand.
	cases := []struct {
		n      int
		tenths int64
		want   int
	}{
		{1, 0, 0}, {1, 250, 0}, {1, 999, 0}, {1, 1000, 0},
		{2, 0, 0}, {2, 250, 0}, {2, 500, 0}, {2, 750, 1}, {2, 1000, 1},
		{3, 0, 0}, {3, 250, 0}, {3, 500, 1}, {3, 750, 2}, {3, 990, 2},
		{1000, 0, 0}, {1000, 250, 249}, {1000, 500, 499}, {1000, 950, 949}, {1000, 990, 989}, {1000, 999, 998}, {1000, 1000, 999},
		{1001, 0, 0}, {1001, 250, 250}, {1001, 500, 500}, {1001, 750, 750}, {1001, 990, 990}, {1001, 999, 999}, {1001, 1000, 1000},
	}
	for _, c := range cases {
		if got := quantiles.Rank(c.tenths, c.n); got != c.want {
			t.Errorf("rank(p%g, n=%d) = %d; want %d", float64(c.tenths)/10, c.n, got, c.want)
		}
	}
}
