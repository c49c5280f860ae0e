package quantiles

import "slices"

// Exactness is a window's count of operations, against the most it may
// hold for exact percentiles. Every Dist of the window's aggregates
// shares it: once the window holds more, each of them turns its values
// into a sketch at its next value or when asked for percentiles, so the
// values kept for exact percentiles never outnumber the first limit
// operations (times the few measures each feeds).
type Exactness struct {
	limit, ops int64
	// partial is set when the window is not all in the file: a viewer
	// over Jaeger whose fetch stopped short. Every figure is then
	// approximate.
	partial bool
	// dists are those holding values, until the window goes over.
	dists []*Dist
}

// NewExactness returns the Exactness of a window whose percentiles are
// exact up to limit operations; partial says the window is not all in
// the file.
func NewExactness(limit int64, partial bool) *Exactness {
	return &Exactness{limit: limit, partial: partial}
}

// Count counts one more operation of the window; the one that takes it
// over the limit turns every Dist's values into a sketch at once, so
// that none keeps them until the end for want of another value.
func (e *Exactness) Count() {
	e.ops++
	if e.ops == e.limit+1 {
		for _, d := range e.dists {
			d.approximate()
		}
		e.dists = nil
	}
}

// over reports whether the window holds too many operations for exact
// percentiles; a nil Exactness never does.
func (e *Exactness) over() bool { return e != nil && e.ops > e.limit }

// Partial reports whether the window is not all in the file; a nil
// Exactness never is.
func (e *Exactness) Partial() bool { return e != nil && e.partial }

// Dist gathers a set of int64 values for their percentiles: every value
// while its window is exact, a sketch once it is not. The zero Dist
// belongs to no window and stays exact.
type Dist struct {
	values []int64
	sk     *sketch
	ex     *Exactness
}

// NewDist returns an empty Dist of the window whose Exactness is ex.
func NewDist(ex *Exactness) Dist { return Dist{ex: ex} }

// Exactness returns the Exactness d shares, nil for none.
func (d *Dist) Exactness() *Exactness { return d.ex }

// Add adds v.
func (d *Dist) Add(v int64) {
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

// Count is how many values were added.
func (d *Dist) Count() int64 {
	if d.sk != nil {
		return d.sk.n
	}
	return int64(len(d.values))
}

// approximate moves the values into a sketch, for good.
func (d *Dist) approximate() {
	if d.sk != nil {
		return
	}
	d.sk = &sketch{}
	for _, v := range d.values {
		d.sk.add(v)
	}
	d.values = nil
}

// Approximated reports whether d's percentiles come from a sketch, or
// from a window not all in the file.
func (d *Dist) Approximated() bool { return d.sk != nil || d.ex.over() || d.ex.Partial() }

// Percentiles writes into dst[i] the percentile tenths[i] converted by
// conv, and reports false, writing nothing, when there are no values;
// exact values are sorted in place. dst must be as long as tenths.
func (d *Dist) Percentiles(dst []float64, tenths []int64, conv func(float64) float64) bool {
	if d.sk == nil && d.ex.over() {
		d.approximate()
	}
	n := d.Count()
	if n == 0 {
		return false
	}
	if d.sk == nil {
		slices.Sort(d.values)
		for i, t := range tenths {
			dst[i] = conv(float64(d.values[Rank(t, len(d.values))]))
		}
		return true
	}
	for i, t := range tenths {
		dst[i] = conv(d.sk.at(int64(Rank(t, int(n)))))
	}
	return true
}
