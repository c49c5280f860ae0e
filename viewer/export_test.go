package viewer

import (
	"time"

	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
)

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

// SetExactLimit replaces the most operations a window may hold for its
// percentiles to be exact.
func SetExactLimit(v *Viewer, n int64) { v.exact = n }

// SetSieveRule replaces when a search sieves its row terms: once a walk
// has read the rows of sample candidates and those it would still read
// are more than 1/share of the candidates left.
func SetSieveRule(v *Viewer, sample, share int) { v.sieve = tsearch.Rule{Sample: sample, Share: share} }

// RaceEnabled is set when the tests run under the race detector.
const RaceEnabled = raceEnabled
