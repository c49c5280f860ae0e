package viewer

import (
	"net/url"
	"testing"
	"time"
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

// PlanQuery is a query of the viewer's with arguments, and what its plan
// must contain.
type PlanQuery struct {
	Name, Query, Want string
	Args              []any
}

// SearchPlanQueries returns the search's and the backlinks' queries with
// every term in use, and the reads of a trace's spans that the rule of
// phases climbs.
func SearchPlanQueries() []PlanQuery {
	rows, rowsArgs := searchRowsQuery([]string{`$."1"`}, "n")
	sv := newSieve("n", []attrTerm{{"k", "1"}, {"k2", "v"}}, []int64{1, 2})
	return []PlanQuery{
		{Name: "rows", Query: rows, Args: append([]any{"[1,2,3]"}, rowsArgs...), Want: "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)"},
		{Name: "sieve by range", Query: sv.byRange, Args: append([]any{1, 100}, sv.args...), Want: "SEARCH spans USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{Name: "sieve by list", Query: sv.byList, Args: append([]any{"[1,2,3]"}, sv.args...), Want: "SEARCH spans USING INTEGER PRIMARY KEY (rowid=?)"},
		{Name: "backlinks", Query: backlinkQuery, Args: []any{1, 2, 3, 4, "x"}, Want: "SEARCH s USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{Name: "trace by row", Query: traceRowQuery, Args: append([]any{1}, opArgs()...), Want: "SEARCH spans USING INDEX spans_by_trace (trace=?)"},
		{Name: "trace by row's generations", Query: traceRowQuery, Args: append([]any{1}, opArgs()...), Want: "SEARCH t2 USING COVERING INDEX traces_by_gen"},
		{Name: "spans of a range", Query: rangeQuery, Args: append([]any{1, 100}, opArgs()...), Want: "SEARCH spans USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{Name: "trace by id", Query: traceIDQuery, Args: append([]any{[]byte("0123456789abcdef")}, opArgs()...), Want: "SEARCH spans USING INDEX spans_by_trace (trace=?)"},
	}
}

// SetExactLimit replaces the most operations a window may hold for its
// percentiles to be exact.
func SetExactLimit(v *Viewer, n int64) { v.exact = n }

// SetSieveRule replaces when a search sieves its row terms: once a walk
// has read the rows of sample candidates and those it would still read
// are more than 1/share of the candidates left.
func SetSieveRule(v *Viewer, sample, share int) { v.sieve = sieveRule{sample: sample, share: share} }

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
