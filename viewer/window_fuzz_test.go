package viewer_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// FuzzParseQuery checks that any query either parses into a window that
// starts no later than it ends, or is refused with a message; never a
// panic.
func FuzzParseQuery(f *testing.F) {
	f.Add("24h-ago", "now", "America/New_York", "b1", "orders", "o*")
	f.Add("2026-03-08T02:30:00-05:00", "midnight", "UTC", "", "", "[!")
	f.Add("penultimate-midnight", "top-of-hour", "Asia/Kolkata", "", "", "")
	now := time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, since, until, tz, broadcaster, topic, glob string) {
		params := url.Values{"since": {since}, "until": {until}, "tz": {tz}, "broadcaster": {broadcaster}, "topic": {topic}, "glob": {glob}}
		q, err := viewer.ParseParams(params, now, time.UTC)
		if err != nil {
			if err.Error() == "" {
				t.Error("empty error message")
			}
			return
		}
		if !q.SinceBeginning && q.Since.After(q.Until) {
			t.Errorf("since %v after until %v", q.Since, q.Until)
		}
		if q.Until.After(now) && !q.Until.Equal(now) && (until == "" || until == "now" || until == "midnight" || until == "top-of-hour" || until == "top-of-minute") {
			t.Errorf("named until %q = %v is after now", until, q.Until)
		}
	})
}
