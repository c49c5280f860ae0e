// Package quantiles is the viewer's percentile maths, with the standard
// library only: the nearest rank of a percentile among sorted values, a
// mergeable sketch that reports any percentile within Alpha of the exact
// one, and Dist, a set of values that stays exact while its window holds
// at most a limit of operations (Exactness) and turns into a sketch after
// (docs/design.md#windows-and-percentiles).
//
// It knows nothing of the viewer's JSON types: percentiles are written
// into a []float64 for the tenths (of a percent) the caller asks for.
package quantiles
