package viewer_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestParams_OneMessage checks that a parameter read by several routes is
// parsed in one place: the same bad value gets the same message from
// each of them.
func TestParams_OneMessage(t *testing.T) {
	path := writeOps(t, t.TempDir(), "p.db", []opSpec{newOp("notify", testNow.Add(-time.Minute), time.Millisecond)})
	base := server(t, mustOpen(t, testNow, path))
	const traceID = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct{ param, value string }{{"tz", "Nowhere/Atlantis"}} {
		t.Run(c.param, func(t *testing.T) {
			var first string
			for _, route := range []string{"/api/summary", "/api/series", "/api/map", "/api/traces", "/api/traces/" + traceID} {
				code, body := get(t, base, route, url.Values{c.param: {c.value}})
				msg := string(body)
				if code != 400 {
					t.Fatalf("%s?%s=%s: status %d; want 400", route, c.param, c.value, code)
				}
				if first == "" {
					first = msg
				} else if msg != first {
					t.Errorf("%s?%s=%s answers %s; want the message of the other routes, %s", route, c.param, c.value, msg, first)
				}
			}
		})
	}
}

// TestQuery_Typed checks that the Go API checks its typed queries with
// the rules and messages of the query parameters.
func TestQuery_Typed(t *testing.T) {
	path := writeOps(t, t.TempDir(), "p.db", []opSpec{newOp("notify", testNow.Add(-time.Minute), time.Millisecond)})
	v := mustOpen(t, testNow, path)
	ctx := context.Background()
	q := viewer.Query{SinceBeginning: true, Until: testNow}
	s, err := v.Summary(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if s.Operations["notify"].Count != 1 || s.TZ != "UTC" {
		t.Errorf("summary of a typed query: %d notifies in %s; want 1 in UTC (the viewer's zone)", s.Operations["notify"].Count, s.TZ)
	}
	bad := q
	bad.Glob = "orders/["
	_, errSummary := v.Summary(ctx, bad)
	_, errMap := v.PubSubMap(ctx, bad)
	_, errParams := viewer.ParseParams(url.Values{"since": {"beginning"}, "glob": {bad.Glob}}, testNow, time.UTC)
	for name, err := range map[string]error{"Summary": errSummary, "PubSubMap": errMap} {
		var pe *viewer.ParseError
		if !errors.As(err, &pe) || err.Error() != errParams.Error() {
			t.Errorf("%s of glob %q: %v; want the *ParseError of the parameter, %v", name, bad.Glob, err, errParams)
		}
	}
	backwards := viewer.Query{Since: testNow, Until: testNow.Add(-time.Hour)}
	if _, err := v.Summary(ctx, backwards); err == nil || !strings.Contains(err.Error(), "not after until") {
		t.Errorf("summary of a window that ends before it starts: %v; want a *ParseError of since", err)
	}
	if _, err := v.Breakdown(ctx, viewer.BreakdownQuery{Query: q, By: "colour"}); err == nil || !strings.Contains(err.Error(), "bad by") {
		t.Errorf("breakdown by colour: %v; want a *ParseError of by", err)
	}
	if _, err := v.Breakdown(ctx, viewer.BreakdownQuery{Query: q, By: "topic", Op: "shout"}); err == nil || !strings.Contains(err.Error(), "bad op") {
		t.Errorf("breakdown of op shout: %v; want a *ParseError of op", err)
	}
	if _, err := v.Series(ctx, viewer.SeriesQuery{Query: q, Step: 1500 * time.Microsecond}); err == nil || !strings.Contains(err.Error(), "bad step") {
		t.Errorf("series of step 1.5ms: %v; want a *ParseError of step", err)
	}
	b, err := v.Breakdown(ctx, viewer.BreakdownQuery{Query: q, By: "topic"})
	if err != nil || b.Op != "notify" || len(b.Rows) != 1 || b.Rows[0].Count != 1 {
		t.Errorf("breakdown by topic, no op: %+v, %v; want the one notify", b, err)
	}
}
