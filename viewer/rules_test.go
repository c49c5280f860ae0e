package viewer_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestSummary_PercentileRanks stores n notifies lasting 1..n ms and reads
// the percentiles through the API.
func TestSummary_PercentileRanks(t *testing.T) {
	for _, n := range []int{1, 2, 3, 1000, 1001} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var ops []opSpec
			for i := n; i >= 1; i-- { // stored out of order on purpose
				o := newOp("notify", testNow.Add(-time.Duration(i)*time.Second), time.Duration(i)*time.Millisecond)
				o.size = int64(i)
				ops = append(ops, o)
			}
			base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "p.db", ops)))
			s := summary(t, base, url.Values{"since": {"beginning"}})
			got := s.Operations["notify"]
			want := oraclePct(func() []float64 {
				v := make([]float64, n)
				for i := range v {
					v[i] = float64(i + 1)
				}
				return v
			}())
			if *got.DurationMs != *want || *got.SizeBytes != *want {
				t.Errorf("n=%d: duration %v, size %v; want %v", n, *got.DurationMs, *got.SizeBytes, *want)
			}
			if n == 1000 && (got.DurationMs[6] != 999 || got.DurationMs[5] != 990) {
				t.Errorf("n=1000: p99 = %v, p99.9 = %v; want 990, 999", got.DurationMs[5], got.DurationMs[6])
			}
		})
	}
}

func TestSizeBucket(t *testing.T) {
	for k := 1; k <= 63; k++ {
		lo := int64(1) << (k - 1)
		if got := viewer.BucketOf(lo); got != k {
			t.Errorf("bucket(2^%d) = %d; want %d", k-1, got, k)
		}
		if got := viewer.BucketOf(lo*2 - 1); got != k {
			t.Errorf("bucket(2^%d-1) = %d; want %d", k, got, k)
		}
	}
	if got := viewer.BucketOf(0); got != 0 {
		t.Errorf("bucket(0) = %d; want 0", got)
	}
	if got := viewer.BucketOf(-1); got != -1 {
		t.Errorf("bucket(-1) = %d; want -1", got)
	}
	if got := viewer.BucketBelow(64); got != "18446744073709551616" {
		t.Errorf("below(64) = %s", got)
	}
	if got := viewer.BucketBelow(63); got != "9223372036854775808" {
		t.Errorf("below(63) = %s", got)
	}
}

// TestSummary_SizeBuckets stores sizes on every edge and checks by_size.
func TestSummary_SizeBuckets(t *testing.T) {
	var ops []opSpec
	var sizes []int64
	sizes = append(sizes, 0, 1)
	for k := 1; k <= 62; k++ {
		sizes = append(sizes, int64(1)<<k-1, int64(1)<<k)
	}
	sizes = append(sizes, 1<<63-1)
	for i, sz := range sizes {
		o := newOp("receive", testNow.Add(-time.Duration(i+1)*time.Second), time.Millisecond)
		o.size = sz
		ops = append(ops, o)
	}
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "s.db", ops)))
	got := summary(t, base, url.Values{"since": {"beginning"}}).Operations["receive"].BySize
	want := map[int]int64{}
	top := 0
	for _, sz := range sizes {
		k := oracleBucket(sz)
		want[k]++
		top = max(top, k)
	}
	if len(got) != top+1 || top != 63 {
		t.Fatalf("len(by_size) = %d; want %d (up to below 2^63)", len(got), top+1)
	}
	for k, b := range got {
		wantBelow := "1"
		if k > 0 {
			wantBelow = bigPow{}.of(k)
		}
		if b.Below != wantBelow || b.Count != want[k] {
			t.Errorf("by_size[%d] = %+v; want below %s count %d", k, b, wantBelow, want[k])
		}
	}
}
