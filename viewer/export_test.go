package viewer

import "time"

// SetClock replaces the viewer's present, for tests of the window presets.
func SetClock(v *Viewer, now func() time.Time) { v.now = now }

// SetLocation replaces the viewer's default zone.
func SetLocation(v *Viewer, loc *time.Location) { v.loc = loc }

// SetSample replaces how many operations the average trace reads.
func SetSample(v *Viewer, n int) { v.sample = n }

// SetExactLimit replaces the most operations a window may hold for its
// percentiles to be exact.
func SetExactLimit(v *Viewer, n int64) { v.exact = n }

// GlobMatch exposes globMatch.
var GlobMatch = globMatch

// BucketOf, BucketBelow and Rank expose the rules.
var (
	BucketOf    = sizeBucket
	BucketBelow = bucketBelow
	Rank        = rank
)
