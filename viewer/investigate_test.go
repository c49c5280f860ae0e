package viewer_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestPage_Investigate checks the page's trends, map and breakdowns: their
// doors carry the window, the filters and their own search parameters,
// and service names made of markup are text.
func TestPage_Investigate(t *testing.T) {
	ops := genServiceOps(61, 600)
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "p.db", ops)))
	code, page := get(t, base, "/", url.Values{"since": {"2026-03-10T06:00:00Z"}, "broadcaster": {"b1:3003"}, "token": {"s3cret"}})
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, page)
	}
	p := string(page)
	if strings.Contains(p, `<i>"svc"</i>`) || !strings.Contains(p, `&lt;i&gt;&#34;svc&#34;&lt;/i&gt;`) {
		t.Error("a service name of markup is not escaped text")
	}
	doors := func(section string) []url.Values {
		t.Helper()
		m := regexp.MustCompile(`(?s)<h2 id="` + section + `">.*?(?:<h2|$)`).FindString(p)
		var out []url.Values
		for _, h := range regexp.MustCompile(`href="\?([^"#]*)#traces"`).FindAllStringSubmatch(m, -1) {
			v, err := url.ParseQuery(html.UnescapeString(h[1]))
			if err != nil {
				t.Fatal(err)
			}
			if v.Get("broadcaster") != "b1:3003" || v.Get("token") != "s3cret" {
				t.Errorf("%s: door %s loses the filters or the token", section, h[1])
			}
			out = append(out, v)
		}
		if len(out) == 0 {
			t.Errorf("%s: no door", section)
		}
		return out
	}
	// Trends: 6 h in steps of 5 min is 72 buckets, three charts of each
	// of the eight operations, each bucket a door to its own window.
	trends := doors("trends")
	if len(trends) != 8*3*72 {
		t.Errorf("trends: %d doors; want %d", len(trends), 8*3*72)
	}
	first := trends[0]
	if first.Get("op") != "notify" || first.Get("since") != "2026-03-10T06:00:00Z" || first.Get("until") != "2026-03-10T06:05:00Z" {
		t.Errorf("first trend door %v; want notify from 06:00 to 06:05", first)
	}
	// Breakdowns: a row of notify by topic leads to its topic.
	var byTopic bool
	for _, v := range doors("breakdowns") {
		if v.Get("op") == "notify" && v.Get("topic") == "orders" && v.Get("status") == "error" {
			byTopic = true
		}
	}
	if !byTopic {
		t.Error("breakdowns: no door to the failed notifies on topic orders")
	}
	// Map: an edge between a service and a topic.
	var edge bool
	for _, v := range doors("map") {
		if (v.Get("op") == "receive" || v.Get("op") == "notify") && v.Get("service") != "" && v.Get("topic") != "" {
			edge = true
		}
	}
	if !edge {
		t.Error("map: no door to the operations of a service on a topic")
	}
	if !strings.Contains(p, `<svg id="pubsub-map"`) {
		t.Error("no map drawn")
	}
	// A bad step is the page's 400.
	if code, _ := get(t, base, "/", url.Values{"step": {"1ms"}}); code != http.StatusBadRequest {
		t.Errorf("step=1ms: status %d; want 400", code)
	}
}
