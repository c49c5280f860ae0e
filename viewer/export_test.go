package viewer

import "time"

// SetClock replaces the viewer's present, for tests of the window presets.
func SetClock(v *Viewer, now func() time.Time) { v.now = now }

// SetLocation replaces the viewer's default zone.
func SetLocation(v *Viewer, loc *time.Location) { v.loc = loc }

// SetSample replaces how many operations the average trace reads.
func SetSample(v *Viewer, n int) { v.sample = n }

// BucketOf, BucketBelow and Rank expose the rules.
var (
	BucketOf    = sizeBucket
	BucketBelow = bucketBelow
	Rank        = rank
)
