package viewer_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
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
	// Trends: one door per bucket that has operations, to its own window,
	// as many as the series has, notify's first.
	series := seriesOf(t, base, url.Values{"since": {"2026-03-10T06:00:00Z"}, "broadcaster": {"b1:3003"}})
	var want []url.Values
	step := time.Duration(series.StepMs) * time.Millisecond
	for _, op := range schema.Operations {
		for _, b := range series.Buckets {
			if b.Ops[op].Count > 0 {
				lo, hi := b.Start, b.Start.Add(step)
				if lo.Before(series.Since) {
					lo = series.Since
				}
				if hi.After(series.Until) {
					hi = series.Until
				}
				want = append(want, url.Values{"op": {op}, "since": {lo.UTC().Format(time.RFC3339Nano)}, "until": {hi.UTC().Format(time.RFC3339Nano)}})
			}
		}
	}
	trends := doors("trends")
	if len(trends) != len(want) || len(want) < 10 {
		t.Fatalf("trends: %d doors; want %d (at least 10)", len(trends), len(want))
	}
	for i, w := range want {
		for k := range w {
			if trends[i].Get(k) != w.Get(k) {
				t.Errorf("trend door %d: %s = %q; want %q", i, k, trends[i].Get(k), w.Get(k))
			}
		}
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
