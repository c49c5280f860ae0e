package viewer

import (
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/jaegerquery"
)

// TestJaegerSource_Coverage follows the coverage through fetches: whole,
// cut short by a budget, refreshed past the gap, dense.
func TestJaegerSource_Coverage(t *testing.T) {
	t0 := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	const window = time.Hour
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	type fetch struct {
		res   jaegerquery.Result
		until time.Time
	}
	for _, tc := range []struct {
		name    string
		fetches []fetch
		since   time.Time // of the window asked
		want    bool      // complete
		from    time.Time // Coverage.Since
	}{
		{"Whole", []fetch{{jaegerquery.Result{}, at(0)}}, at(-60), true, at(-60)},
		{"BeforeTheWindow", []fetch{{jaegerquery.Result{}, at(0)}}, at(-61), false, at(-60)},
		{"Beginning", []fetch{{jaegerquery.Result{}, at(0)}}, time.Time{}, false, at(-60)},
		{"Budget", []fetch{{jaegerquery.Result{Reason: "trace budget of 20 traces ran out", CoveredSince: at(-10)}, at(0)}}, at(-60), false, at(-10)},
		{"BudgetWithin", []fetch{{jaegerquery.Result{Reason: "trace budget of 20 traces ran out", CoveredSince: at(-10)}, at(0)}}, at(-10), true, at(-10)},
		{"RefreshKeepsTheGap", []fetch{
			{jaegerquery.Result{}, at(0)},
			{jaegerquery.Result{Reason: "time budget of 10s ran out", CoveredSince: at(4)}, at(5)},
		}, at(-55), false, at(4)},
		{"GapLeftTheWindow", []fetch{
			{jaegerquery.Result{Reason: "trace budget of 20 traces ran out", CoveredSince: at(-10)}, at(0)},
			{jaegerquery.Result{}, at(55)},
		}, at(-5), true, at(-5)},
		{"Dense", []fetch{{jaegerquery.Result{Dense: 1}, at(0)}}, at(-30), false, at(-60)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &jaegerSource{window: window}
			s.cov.Since = tc.fetches[0].until.Add(-window)
			for _, f := range tc.fetches {
				s.apply(f.res, f.until)
			}
			c := s.coverage(tc.since)
			if c.Complete != tc.want || !c.Since.Equal(tc.from) {
				t.Errorf("coverage = complete %v since %s; want %v since %s", c.Complete, c.Since.Format(time.TimeOnly), tc.want, tc.from.Format(time.TimeOnly))
			}
			if s.partial(tc.since) == tc.want {
				t.Errorf("partial = %v; want %v", !tc.want, !tc.want)
			}
			if note := s.note(tc.since); (note == "") != tc.want {
				t.Errorf("note = %q; want one exactly when partial", note)
			}
		})
	}
}
