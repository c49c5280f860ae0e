package viewer_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestParseQuery_Messages: a refused parameter says what is wrong with it
// in words a person can act on.
func TestParseQuery_Messages(t *testing.T) {
	for _, c := range []struct {
		name   string
		params url.Values
		want   string
	}{
		{"SinceBeforeRange", url.Values{"since": {"1600-01-01T00:00:00Z"}}, `bad since "1600-01-01T00:00:00Z": want a time from 1678 to 2261`},
		{"UntilAfterRange", url.Values{"until": {"2300-01-01T00:00:00Z"}}, `bad until "2300-01-01T00:00:00Z": want a time from 1678 to 2261`},
		{"SinceNotATime", url.Values{"since": {"yesterday"}}, `bad since "yesterday": want an RFC 3339 time`},
		{"GlobOpenSet", url.Values{"glob": {"["}}, `bad glob "[": want a pattern: the '[' at character 1 opens a set that no ']' closes`},
		{"GlobOpenSetLater", url.Values{"glob": {"orders/[eu*"}}, `the '[' at character 8 opens a set`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := viewer.ParseParams(c.params, testNow, time.UTC)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseQuery(%s) = %v; want an error containing %q", c.params.Encode(), err, c.want)
			}
		})
	}
	// A closed set, a literal '[' written as a set, and a ']' first stay valid.
	for _, g := range []string{"[eu]*", "a[[]b", "[]]x", "[!o]*"} {
		if _, err := viewer.ParseParams(url.Values{"glob": {g}}, testNow, time.UTC); err != nil {
			t.Errorf("glob %q: %v; want it accepted", g, err)
		}
	}
}

// TestServe_BadGlob: every endpoint that takes a glob refuses one that
// cannot be what was meant with a 400 that says why, instead of an empty
// answer.
func TestServe_BadGlob(t *testing.T) {
	path := writeOps(t, t.TempDir(), "t.db", genOps(3, 50))
	base := server(t, mustOpen(t, testNow, path))
	for _, p := range []string{"/", "/api/summary", "/api/series", "/api/breakdown", "/api/map", "/api/traces", "/trace/0123456789abcdef0123456789abcdef"} {
		params := url.Values{"since": {"beginning"}, "glob": {"["}}
		if p == "/api/breakdown" {
			params.Set("by", "topic")
		}
		code, body := get(t, base, p, params)
		if code != http.StatusBadRequest || !strings.Contains(string(body), "opens a set that no") {
			t.Errorf("GET %s?%s: %d %.200s; want 400 saying the set is not closed", p, params.Encode(), code, body)
		}
	}
}

// TestServe_OffsetRange: the trace list refuses every offset it cannot
// serve with one message, the one the page gives too, whatever the
// reason (past the end, or past it with the limit).
func TestServe_OffsetRange(t *testing.T) {
	path := writeOps(t, t.TempDir(), "t.db", genOps(3, 20))
	base := server(t, mustOpen(t, testNow, path))
	const want = "want an integer from 0 to 9950"
	for _, c := range []struct{ path, offset string }{{"/api/traces", "9990"}, {"/api/traces", "20000"}, {"/", "9990"}, {"/", "20000"}} {
		code, body := get(t, base, c.path, url.Values{"offset": {c.offset}})
		if code != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("GET %s?offset=%s: %d %.200s; want 400 saying %q", c.path, c.offset, code, body, want)
		}
	}
	if code, body := get(t, base, "/api/traces", url.Values{"offset": {"9900"}, "limit": {"100"}}); code != http.StatusOK {
		t.Errorf("offset 9900 with limit 100: %d %.200s; want 200", code, body)
	}
}

// TestPage_OneNotification: the page's sentence and title say "1
// notification", not "1 notifications".
func TestPage_OneNotification(t *testing.T) {
	one := newOp(schema.OpNotify, testNow.Add(-time.Hour), time.Millisecond)
	one.broadcaster = "b"
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "one.db", []opSpec{one})))
	_, page := get(t, base, "/", url.Values{"since": {"beginning"}})
	for _, want := range []string{"1 notification</title>", "1</b> notification</a> to"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page does not contain %q", want)
		}
	}
	if strings.Contains(string(page), "1 notifications") || strings.Contains(string(page), "1</b> notifications") {
		t.Error(`page says "1 notifications"`)
	}
}
