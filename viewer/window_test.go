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
	// The cases below are read off the tz database (zdump -v -c 2026,2027
	// ZONE): each comment gives the change as zdump prints it.
	//
	// America/Santiago 2026-09-06 04:00Z: 23:59:59 -04 jumps to 01:00 -03,
	// so the day starts at 01:00, an hour that is also its top of the hour.
	{"SkippedMidnightSantiago", "America/Santiago", "2026-09-06T01:20:00-03:00", map[string]string{
		"penultimate-midnight": "2026-09-05T00:00:00-04:00", "24h-ago": "2026-09-05T00:20:00-04:00",
		"penultimate-hour": "2026-09-05T23:00:00-04:00", "1h-ago": "2026-09-05T23:20:00-04:00",
		"penultimate-minute": "2026-09-06T01:19:00-03:00", "1m-ago": "2026-09-06T01:19:00-03:00",
		"now": "2026-09-06T01:20:00-03:00", "midnight": "2026-09-06T01:00:00-03:00",
		"top-of-hour": "2026-09-06T01:00:00-03:00", "top-of-minute": "2026-09-06T01:20:00-03:00"}},
	// The day after: yesterday ran from 01:00 -03 and lasted 23 hours.
	{"DayAfterSkipSantiago", "America/Santiago", "2026-09-07T00:30:00-03:00", map[string]string{
		"penultimate-midnight": "2026-09-06T01:00:00-03:00", "24h-ago": "2026-09-05T23:30:00-04:00",
		"penultimate-hour": "2026-09-06T23:00:00-03:00", "1h-ago": "2026-09-06T23:30:00-03:00",
		"penultimate-minute": "2026-09-07T00:29:00-03:00", "1m-ago": "2026-09-07T00:29:00-03:00",
		"now": "2026-09-07T00:30:00-03:00", "midnight": "2026-09-07T00:00:00-03:00",
		"top-of-hour": "2026-09-07T00:00:00-03:00", "top-of-minute": "2026-09-07T00:30:00-03:00"}},
	// America/Havana 2026-03-08 05:00Z: 23:59:59 CST jumps to 01:00 CDT.
	{"DayAfterSkipHavana", "America/Havana", "2026-03-09T00:10:00-04:00", map[string]string{
		"penultimate-midnight": "2026-03-08T01:00:00-04:00", "24h-ago": "2026-03-07T23:10:00-05:00",
		"penultimate-hour": "2026-03-08T23:00:00-04:00", "1h-ago": "2026-03-08T23:10:00-04:00",
		"penultimate-minute": "2026-03-09T00:09:00-04:00", "1m-ago": "2026-03-09T00:09:00-04:00",
		"now": "2026-03-09T00:10:00-04:00", "midnight": "2026-03-09T00:00:00-04:00",
		"top-of-hour": "2026-03-09T00:00:00-04:00", "top-of-minute": "2026-03-09T00:10:00-04:00"}},
	// America/Havana 2026-11-01 05:00Z: 00:59:59 CDT falls back to 00:00
	// CST, so midnight happens twice; now is in the second hour after it.
	// The day starts at the first midnight; the top of the hour is the most
	// recent one.
	{"RepeatedMidnightHavana", "America/Havana", "2026-11-01T00:30:00-05:00", map[string]string{
		"penultimate-midnight": "2026-10-31T00:00:00-04:00", "24h-ago": "2026-10-31T01:30:00-04:00",
		"penultimate-hour": "2026-11-01T00:00:00-04:00", "1h-ago": "2026-11-01T00:30:00-04:00",
		"penultimate-minute": "2026-11-01T00:29:00-05:00", "1m-ago": "2026-11-01T00:29:00-05:00",
		"now": "2026-11-01T00:30:00-05:00", "midnight": "2026-11-01T00:00:00-04:00",
		"top-of-hour": "2026-11-01T00:00:00-05:00", "top-of-minute": "2026-11-01T00:30:00-05:00"}},
	// Atlantic/Azores 2026-03-29 01:00Z: 23:59:59 -01 jumps to 01:00 +00.
	{"SkippedMidnightAzores", "Atlantic/Azores", "2026-03-29T01:45:30Z", map[string]string{
		"penultimate-midnight": "2026-03-28T00:00:00-01:00", "24h-ago": "2026-03-28T01:45:30Z",
		"penultimate-hour": "2026-03-28T23:00:00-01:00", "1h-ago": "2026-03-29T00:45:30Z",
		"penultimate-minute": "2026-03-29T01:44:00Z", "1m-ago": "2026-03-29T01:44:30Z",
		"now": "2026-03-29T01:45:30Z", "midnight": "2026-03-29T01:00:00Z",
		"top-of-hour": "2026-03-29T01:00:00Z", "top-of-minute": "2026-03-29T01:45:00Z"}},
	// Atlantic/Azores 2026-10-25 01:00Z: 00:59:59 +00 falls back to 00:00
	// -01; the day after, yesterday ran from the first midnight, 25 hours.
	{"DayAfterRepeatedMidnightAzores", "Atlantic/Azores", "2026-10-26T00:10:00-01:00", map[string]string{
		"penultimate-midnight": "2026-10-25T00:00:00Z", "24h-ago": "2026-10-25T00:10:00-01:00",
		"penultimate-hour": "2026-10-25T23:00:00-01:00", "1h-ago": "2026-10-25T23:10:00-01:00",
		"penultimate-minute": "2026-10-26T00:09:00-01:00", "1m-ago": "2026-10-26T00:09:00-01:00",
		"now": "2026-10-26T00:10:00-01:00", "midnight": "2026-10-26T00:00:00-01:00",
		"top-of-hour": "2026-10-26T00:00:00-01:00", "top-of-minute": "2026-10-26T00:10:00-01:00"}},
	// Australia/Lord_Howe 2026-10-03 15:30Z: 01:59:59 +1030 jumps to 02:30
	// +11; the hour from 02:00 starts when the clock resumes, at 02:30.
	{"HalfHourForwardLordHowe", "Australia/Lord_Howe", "2026-10-04T02:40:00+11:00", map[string]string{
		"penultimate-midnight": "2026-10-03T00:00:00+10:30", "24h-ago": "2026-10-03T02:10:00+10:30",
		"penultimate-hour": "2026-10-04T01:00:00+10:30", "1h-ago": "2026-10-04T01:10:00+10:30",
		"penultimate-minute": "2026-10-04T02:39:00+11:00", "1m-ago": "2026-10-04T02:39:00+11:00",
		"now": "2026-10-04T02:40:00+11:00", "midnight": "2026-10-04T00:00:00+10:30",
		"top-of-hour": "2026-10-04T02:30:00+11:00", "top-of-minute": "2026-10-04T02:40:00+11:00"}},
	// Australia/Lord_Howe 2026-04-04 15:00Z: 01:59:59 +11 falls back to
	// 01:30 +1030; at 01:50 the second time, the clock last read 01:00 an
	// hour and 20 minutes ago.
	{"HalfHourBackLordHowe", "Australia/Lord_Howe", "2026-04-05T01:50:00+10:30", map[string]string{
		"penultimate-midnight": "2026-04-04T00:00:00+11:00", "24h-ago": "2026-04-04T02:20:00+11:00",
		"penultimate-hour": "2026-04-05T00:00:00+11:00", "1h-ago": "2026-04-05T01:20:00+11:00",
		"penultimate-minute": "2026-04-05T01:49:00+10:30", "1m-ago": "2026-04-05T01:49:00+10:30",
		"now": "2026-04-05T01:50:00+10:30", "midnight": "2026-04-05T00:00:00+11:00",
		"top-of-hour": "2026-04-05T01:00:00+11:00", "top-of-minute": "2026-04-05T01:50:00+10:30"}},
	// Asia/Beirut 2026-10-24 21:00Z: 23:59:59 EEST falls back to 23:00 EET,
	// east of UTC; just after the one midnight, the last full hour is the
	// second 23:00 and yesterday lasted 25 hours.
	{"DayAfterRepeatedHourBeirut", "Asia/Beirut", "2026-10-25T00:10:00+02:00", map[string]string{
		"penultimate-midnight": "2026-10-24T00:00:00+03:00", "24h-ago": "2026-10-24T01:10:00+03:00",
		"penultimate-hour": "2026-10-24T23:00:00+02:00", "1h-ago": "2026-10-24T23:10:00+02:00",
		"penultimate-minute": "2026-10-25T00:09:00+02:00", "1m-ago": "2026-10-25T00:09:00+02:00",
		"now": "2026-10-25T00:10:00+02:00", "midnight": "2026-10-25T00:00:00+02:00",
		"top-of-hour": "2026-10-25T00:00:00+02:00", "top-of-minute": "2026-10-25T00:10:00+02:00"}},
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
				q, err := viewer.ParseParams(params, now, time.UTC)
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

// TestParseQuery_PresetsAcrossZoneChanges walks every zone change of 2026
// in zones that skip or repeat midnight or shift by half an hour, and checks
// each named instant by what it must be on the wall clock: midnight is on
// now's date with the day before just before it; the top of the hour reads
// hh:00 (or the clock jumped over hh:00 there) and is the last such instant
// up to now.
func TestParseQuery_PresetsAcrossZoneChanges(t *testing.T) {
	zones := []string{"America/Santiago", "America/Havana", "Atlantic/Azores", "Australia/Lord_Howe",
		"Asia/Beirut", "America/New_York", "Europe/Paris", "America/St_Johns", "Pacific/Chatham"}
	day := func(t time.Time) string { return t.Format("2006-01-02") }
	hour := func(t time.Time) string { return t.Format("2006-01-02T15") }
	jumped := func(at time.Time) bool { // a zone change at at moved the clock forward
		_, before := at.Add(-1).Zone()
		_, after := at.Zone()
		return after > before
	}
	preset := func(loc *time.Location, now time.Time, until string) time.Time {
		t.Helper()
		q, err := viewer.ParseParams(url.Values{"until": {until}, "since": {"beginning"}, "tz": {loc.String()}}, now, time.UTC)
		if err != nil {
			t.Fatalf("until=%s at %s: %v", until, now, err)
		}
		return q.Until.In(loc)
	}
	for _, name := range zones {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		changes := 0
		for at := time.Date(2026, 1, 1, 0, 0, 0, 0, loc); at.Year() == 2026; changes++ {
			_, end := at.ZoneBounds()
			if end.IsZero() || end.Year() != 2026 {
				break
			}
			for now := end.Add(-30 * time.Hour).In(loc); now.Before(end.Add(30 * time.Hour)); now = now.Add(7*time.Minute + 13*time.Second) {
				mid := preset(loc, now, "midnight")
				if mid.After(now) || day(mid) != day(now) || day(mid.Add(-1)) >= day(now) {
					t.Errorf("%s at %s: midnight = %s", name, now, mid)
				}
				top := preset(loc, now, "top-of-hour")
				if top.After(now) || (top.Minute() != 0 || top.Second() != 0 || top.Nanosecond() != 0) && !jumped(top) {
					t.Errorf("%s at %s: top-of-hour = %s", name, now, top)
				}
				// No later minute up to now reads hh:00 or jumps over it
				// (every offset of 2026 is whole minutes).
				for s := top.Truncate(time.Minute).Add(time.Minute); !s.After(now); s = s.Add(time.Minute) {
					if s = s.In(loc); s.Minute() == 0 || jumped(s) && hour(s.Add(-1)) != hour(s) {
						t.Errorf("%s at %s: top-of-hour = %s, but the clock read %s later", name, now, top, s)
						break
					}
				}
			}
			at = end
		}
		if changes != 2 {
			t.Errorf("%s: %d zone changes in 2026; want 2", name, changes)
		}
	}
}
