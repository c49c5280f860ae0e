package viewer

import (
	"net/url"
	"testing"
	"time"

	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
)

// SetClock replaces the viewer's present, for tests of the window presets.
func SetClock(v *Viewer, now func() time.Time) { v.now = now }

// SetLocation replaces the viewer's default zone.
func SetLocation(v *Viewer, loc *time.Location) { v.loc = loc }

// SetSample replaces how many operations the average trace reads.
func SetSample(v *Viewer, n int) { v.sample = n }

// BucketOf and BucketBelow expose the rules.
var (
	BucketOf    = sizeBucket
	BucketBelow = bucketBelow
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

// ParseParams parses the window and filters of params as the handlers do.
var ParseParams = parseQuery

// QueryOf is the Query of params as v's handlers parse it, with v's
// clock and zone.
func QueryOf(tb testing.TB, v *Viewer, params url.Values) Query {
	tb.Helper()
	q, err := parseQuery(params, v.now(), v.loc)
	if err != nil {
		tb.Fatalf("parse %s: %v", params.Encode(), err)
	}
	return q
}

// BreakdownOf is the BreakdownQuery of params as v's handlers parse it.
func BreakdownOf(tb testing.TB, v *Viewer, params url.Values) BreakdownQuery {
	tb.Helper()
	q, err := parseBreakdown(params, v.now(), v.loc)
	if err != nil {
		tb.Fatalf("parse %s: %v", params.Encode(), err)
	}
	return q
}
