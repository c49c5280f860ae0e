package viewer

import (
	"cmp"
	"encoding/json"
	"slices"
)

// percentileTenths are the reported percentiles in tenths of a percent,
// so that p99.9 is exact: the rank is computed in integers, as
// 99.9/100*1000 in floating point is 999.0000000000001 and would round up.
var percentileTenths = [...]int64{0, 250, 500, 750, 950, 990, 999, 1000}

// percentileNames are the JSON names of percentileTenths, in order.
var percentileNames = [...]string{"p0", "p25", "p50", "p75", "p95", "p99", "p99.9", "p100"}

// Percentiles holds p0, p25, p50, p75, p95, p99, p99.9 and p100 of a set
// of values: the value at 1-based rank ceil(p/100·n) of the n sorted
// values, p0 being the minimum.
type Percentiles [len(percentileTenths)]float64

// MarshalJSON writes the object {"p0": …, …, "p100": …}.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, name := range percentileNames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		v, err := json.Marshal(p[i])
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Percentiles) UnmarshalJSON(b []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for i, name := range percentileNames {
		p[i] = m[name]
	}
	return nil
}

// P25, P50, P75 and P99 name the percentiles the sentences quote.
func (p *Percentiles) P25() float64 { return p[1] }

// P50 is the median.
func (p *Percentiles) P50() float64 { return p[2] }

// P75 is the 75th percentile.
func (p *Percentiles) P75() float64 { return p[3] }

// P99 is the 99th percentile.
func (p *Percentiles) P99() float64 { return p[5] }

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
func percentilesOf[T cmp.Ordered](values []T, conv func(T) float64) *Percentiles {
	if len(values) == 0 {
		return nil
	}
	slices.Sort(values)
	var p Percentiles
	for i, t := range percentileTenths {
		p[i] = conv(values[rank(t, len(values))])
	}
	return &p
}

// nsToMs turns nanoseconds into milliseconds.
func nsToMs(ns int64) float64 { return float64(ns) / 1e6 }
