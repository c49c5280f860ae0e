package viewer_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York on any machine

	"github.com/lonelytrace/lonelytrace/viewer"
)

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// windowCases give, for a fixed present in a zone, every named instant
// worked out by hand on the wall clock.
var windowCases = []struct {
	name, tz, now string
	want          map[string]string // preset -> instant
}{
	{"AcrossMidnightUTC", "UTC", "2026-01-01T00:00:30.25Z", map[string]string{
		"penultimate-midnight": "2025-12-31T00:00:00Z", "24h-ago": "2025-12-31T00:00:30.25Z",
		"penultimate-hour": "2025-12-31T23:00:00Z", "1h-ago": "2025-12-31T23:00:30.25Z",
		"penultimate-minute": "2025-12-31T23:59:00Z", "1m-ago": "2025-12-31T23:59:30.25Z",
		"now": "2026-01-01T00:00:30.25Z", "midnight": "2026-01-01T00:00:00Z",
		"top-of-hour": "2026-01-01T00:00:00Z", "top-of-minute": "2026-01-01T00:00:00Z"}},
	// 2026-03-08 02:00 EST jumps to 03:00 EDT: the day has 23 hours.
	{"SpringForwardNewYork", "America/New_York", "2026-03-08T03:30:00-04:00", map[string]string{
		"penultimate-midnight": "2026-03-07T00:00:00-05:00", "24h-ago": "2026-03-07T02:30:00-05:00",
		"penultimate-hour": "2026-03-08T01:00:00-05:00", "1h-ago": "2026-03-08T01:30:00-05:00",
		"penultimate-minute": "2026-03-08T03:29:00-04:00", "1m-ago": "2026-03-08T03:29:00-04:00",
		"now": "2026-03-08T03:30:00-04:00", "midnight": "2026-03-08T00:00:00-05:00",
		"top-of-hour": "2026-03-08T03:00:00-04:00", "top-of-minute": "2026-03-08T03:30:00-04:00"}},
	// 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice;
	// this is the second time.
	{"FallBackNewYork", "America/New_York", "2026-11-01T01:30:00-05:00", map[string]string{
		"penultimate-midnight": "2026-10-31T00:00:00-04:00", "24h-ago": "2026-10-31T02:30:00-04:00",
		"penultimate-hour": "2026-11-01T01:00:00-04:00", "1h-ago": "2026-11-01T01:30:00-04:00",
		"penultimate-minute": "2026-11-01T01:29:00-05:00", "1m-ago": "2026-11-01T01:29:00-05:00",
		"now": "2026-11-01T01:30:00-05:00", "midnight": "2026-11-01T00:00:00-04:00",
		"top-of-hour": "2026-11-01T01:00:00-05:00", "top-of-minute": "2026-11-01T01:30:00-05:00"}},
	// The day after fall back has 25 hours: yesterday is 25 hours long.
	{"DayAfterFallBack", "America/New_York", "2026-11-02T00:10:00-05:00", map[string]string{
		"penultimate-midnight": "2026-11-01T00:00:00-04:00", "24h-ago": "2026-11-01T00:10:00-05:00",
		"penultimate-hour": "2026-11-01T23:00:00-05:00", "1h-ago": "2026-11-01T23:10:00-05:00",
		"penultimate-minute": "2026-11-02T00:09:00-05:00", "1m-ago": "2026-11-02T00:09:00-05:00",
		"now": "2026-11-02T00:10:00-05:00", "midnight": "2026-11-02T00:00:00-05:00",
		"top-of-hour": "2026-11-02T00:00:00-05:00", "top-of-minute": "2026-11-02T00:10:00-05:00"}},
	// A half-hour zone has its own tops of the hour.
	{"HalfHourKolkata", "Asia/Kolkata", "2026-06-15T10:45:10+05:30", map[string]string{
		"penultimate-midnight": "2026-06-14T00:00:00+05:30", "24h-ago": "2026-06-14T10:45:10+05:30",
		"penultimate-hour": "2026-06-15T09:00:00+05:30", "1h-ago": "2026-06-15T09:45:10+05:30",
		"penultimate-minute": "2026-06-15T10:44:00+05:30", "1m-ago": "2026-06-15T10:44:10+05:30",
		"now": "2026-06-15T10:45:10+05:30", "midnight": "2026-06-15T00:00:00+05:30",
		"top-of-hour": "2026-06-15T10:00:00+05:30", "top-of-minute": "2026-06-15T10:45:00+05:30"}},
}

func TestParseQuery_Presets(t *testing.T) {
	for _, c := range windowCases {
		t.Run(c.name, func(t *testing.T) {
			now := mustTime(t, c.now)
			for preset, want := range c.want {
				params := url.Values{"tz": {c.tz}}
				isUntil := preset == "now" || preset == "midnight" || strings.HasPrefix(preset, "top-of")
				if isUntil {
					params.Set("until", preset)
				} else {
					params.Set("since", preset)
				}
				q, err := viewer.ParseQuery(params, now, time.UTC)
				if err != nil {
					t.Fatalf("%s: %v", preset, err)
				}
				got := q.Since
				if isUntil {
					got = q.Until
				}
				if !got.Equal(mustTime(t, want)) {
					t.Errorf("%s = %s; want %s", preset, got.Format(time.RFC3339Nano), want)
				}
			}
		})
	}
}

// TestSummary_WindowPresets puts one notify every ten minutes (and one a
// second around each instant) and checks each preset pair through the API
// against a count over the hand-worked instants.
func TestSummary_WindowPresets(t *testing.T) {
	for _, c := range windowCases {
		t.Run(c.name, func(t *testing.T) {
			now := mustTime(t, c.now)
			var ops []opSpec
			for d := -50 * time.Hour; d < 0; d += 10 * time.Minute {
				ops = append(ops, newOp("notify", now.Add(d), time.Millisecond))
			}
			for _, inst := range c.want {
				at := mustTime(t, inst)
				for _, d := range []time.Duration{-time.Nanosecond, 0, time.Nanosecond} {
					if at.Add(d).Before(now) {
						ops = append(ops, newOp("notify", at.Add(d), time.Millisecond))
					}
				}
			}
			path := writeOps(t, t.TempDir(), "w.db", ops)
			v := mustOpen(t, now, path)
			base := server(t, v)
			for _, since := range []string{"beginning", "penultimate-midnight", "24h-ago", "penultimate-hour", "1h-ago", "penultimate-minute", "1m-ago"} {
				for _, until := range []string{"now", "midnight", "top-of-hour", "top-of-minute"} {
					lo := time.Unix(0, 0)
					if since != "beginning" {
						lo = mustTime(t, c.want[since])
					}
					hi := mustTime(t, c.want[until])
					if lo.After(hi) {
						code, body := get(t, base, "/api/summary", url.Values{"since": {since}, "until": {until}, "tz": {c.tz}})
						if code != http.StatusBadRequest {
							t.Errorf("since=%s until=%s: status %d; want 400 (%s)", since, until, code, body)
						}
						continue
					}
					var want int64
					for _, o := range ops {
						if !o.start.Before(lo) && o.start.Before(hi) {
							want++
						}
					}
					s := summary(t, base, url.Values{"since": {since}, "until": {until}, "tz": {c.tz}})
					if got := s.Operations["notify"].Count; got != want {
						t.Errorf("since=%s until=%s: count = %d; want %d", since, until, got, want)
					}
					if since != "beginning" && !s.Since.Equal(lo) || !s.Until.Equal(hi) {
						t.Errorf("since=%s until=%s: window = %s..%s; want %s..%s", since, until, s.Since, s.Until, lo, hi)
					}
				}
			}
		})
	}
}

func TestServe_BadParameters(t *testing.T) {
	path := writeOps(t, t.TempDir(), "a.db", genOps(2, 20))
	base := server(t, mustOpen(t, testNow, path))
	cases := []struct {
		path   string
		params url.Values
		want   string
	}{
		{"/api/summary", url.Values{"since": {"yesterday"}}, "since"},
		{"/api/summary", url.Values{"until": {"2026-13-01T00:00:00Z"}}, "until"},
		{"/api/summary", url.Values{"until": {"2026-03-01"}}, "RFC 3339"},
		{"/api/summary", url.Values{"tz": {"Mars/Olympus"}}, "tz"},
		{"/api/summary", url.Values{"tz": {"../../etc/passwd"}}, "tz"},
		{"/api/summary", url.Values{"since": {"now"}}, "since"},
		{"/api/summary", url.Values{"since": {"1h-ago"}, "until": {"2020-01-01T00:00:00Z"}}, "not after until"},
		{"/api/summary", url.Values{"topic": {"a", "b"}}, "at most once"},
		{"/api/summary", url.Values{"glob": {strings.Repeat("*", 2000)}}, "at most 1024 bytes"},
		{"/api/summary", url.Values{"since": {"9999-01-01T00:00:00Z"}}, "since"},
		{"/api/traces", url.Values{"limit": {"0"}}, "limit"},
		{"/api/traces", url.Values{"limit": {"x"}}, "limit"},
		{"/api/traces", url.Values{"offset": {"-1"}}, "offset"},
		{"/api/traces", url.Values{"offset": {"9990"}}, "offset"},
		{"/api/traces/xyz", nil, "32 hexadecimal digits"},
		{"/api/traces/" + strings.Repeat("0", 32), nil, "not all zero"},
		{"/api/traces/" + strings.Repeat("g", 32), nil, "hexadecimal"},
		{"/", url.Values{"since": {"soon"}}, "since"},
		{"/", url.Values{"trace": {"nope"}}, "trace_id"},
	}
	for _, c := range cases {
		code, body := get(t, base, c.path, c.params)
		if code != http.StatusBadRequest || !strings.Contains(string(body), c.want) {
			t.Errorf("GET %s?%s: status %d, body %.200q; want 400 mentioning %q", c.path, c.params.Encode(), code, body, c.want)
		}
	}
}
