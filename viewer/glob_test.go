package viewer_test

import (
	"net/url"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lonelytrace/lonelytrace/viewer"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true}, {"*", "a/b", true}, {"orders*", "orders/eu", true}, {"orders*", "order", false},
		{"?", "é", true}, {"?", "", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"[abc]", "b", true}, {"[abc]", "d", false}, {"[!abc]", "d", true}, {"[!abc]", "a", false},
		{"[a-c]x", "bx", true}, {"[a-c]x", "dx", false}, {"[]]", "]", true}, {"[!]]", "a", true}, {"[!]]", "]", false},
		{"[a-]", "-", true}, {"[z-a]", "m", false}, {"[!z-a]", "m", true},
		{"[", "[", true}, {"a[b", "a[b", true}, {"[!", "[!", true}, {"x*y", "x*y", true}, {"x*y", "xzzy", true},
		{"a[b]", "a[b]", false}, {"a[[]b]", "a[b]", true}, {"\\*", "\\x", true},
		{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, c := range cases {
		if got := viewer.GlobMatch(c.pattern, c.name); got != c.want {
			t.Errorf("match(%q, %q) = %v; want %v", c.pattern, c.name, got, c.want)
		}
		if got := fnmatchRegexp(c.pattern).MatchString(c.name); got != c.want {
			t.Errorf("oracle(%q, %q) = %v; want %v (the oracle is wrong)", c.pattern, c.name, got, c.want)
		}
	}
}

// FuzzGlobMatch compares the matcher with the fnmatch.translate oracle.
func FuzzGlobMatch(f *testing.F) {
	f.Add("orders*", "orders/eu")
	f.Add("[!a-c]?x*", "dzx")
	f.Add("[]-]", "-")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) || len(pattern) > 64 || len(name) > 256 {
			t.Skip()
		}
		got := viewer.GlobMatch(pattern, name)
		if want := fnmatchRegexp(pattern).MatchString(name); got != want {
			t.Errorf("match(%q, %q) = %v; want %v", pattern, name, got, want)
		}
	})
}

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
		q, err := viewer.ParseQuery(params, now, time.UTC)
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
