package viewer_test

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// TestPage_Trends checks that a 20-second run seen through the default
// 24-hour window gets trends a person can read: one column per second
// with operations, time ticks at the start, middle and end in the page's
// time zone, and a page that stays small.
func TestPage_Trends(t *testing.T) {
	run := testNow.Add(-5 * time.Minute) // the run ended 5 minutes ago
	var ops []opSpec
	for i := range 2000 {
		at := run.Add(-20*time.Second + time.Duration(i)*10*time.Millisecond)
		op := []string{schema.OpNotify, schema.OpReceive, schema.OpReceive, schema.OpSubscribeExact}[i%4]
		o := newOp(op, at, time.Duration(1+i%7)*time.Millisecond)
		o.topic, o.broadcaster, o.size, o.failed = "orders", "b1:3003", 100, i%50 == 0
		ops = append(ops, o)
	}
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "t.db", ops)))
	code, body := get(t, base, "/", url.Values{"tz": {"Europe/Paris"}})
	if code != http.StatusOK {
		t.Fatalf("status %d: %.300s", code, body)
	}
	page := string(body)
	if len(page) > 200_000 {
		t.Errorf("page is %d bytes; want at most 200,000", len(page))
	}
	t.Logf("page: %d bytes", len(page))
	trend := regexp.MustCompile(`(?s)<details class="trend" id="trend-notify" open>.*?</details>`).FindString(page)
	if trend == "" {
		t.Fatal("no open notify trend")
	}
	if n := strings.Count(trend, "<a href="); n != 20 {
		t.Errorf("notify trend: %d columns; want 20 (one per second of the run)", n)
	}
	// 11:54:40 to 11:55:00 UTC is 12:54:40 to 12:55:00 in Paris (CET).
	ticks := regexp.MustCompile(`<text class="tick"[^>]*><title>[^<]*</title>([^<]*)</text>`).FindAllStringSubmatch(trend, -1)
	var labels []string
	for _, m := range ticks {
		labels = append(labels, m[1])
	}
	if want := []string{"12:54:40", "12:54:50", "12:55:00 CET"}; strings.Join(labels, "|") != strings.Join(want, "|") {
		t.Errorf("ticks %q; want %q", labels, want)
	}
	if !strings.Contains(page, "in steps of 1s") {
		t.Error("the trends do not say their step is 1s")
	}
	// An operation without any in the window draws no chart.
	missed := regexp.MustCompile(`(?s)<details class="trend" id="trend-missed">.*?</details>`).FindString(page)
	if missed == "" || strings.Contains(missed, "<svg") {
		t.Errorf("missed trend: %q; want a closed line with no chart", missed)
	}
}

// TestPage_TrendsAnyTimes checks that a file with spans at the ends of
// what the file can hold (1677 and 2261) beside a recent one still gets a
// page with trends, since the beginning and until the end.
func TestPage_TrendsAnyTimes(t *testing.T) {
	ops := []opSpec{
		newOp(schema.OpNotify, time.Unix(0, math.MinInt64+int64(time.Hour)), time.Millisecond),
		newOp(schema.OpNotify, testNow.Add(-time.Minute), time.Millisecond),
		newOp(schema.OpNotify, time.Date(2261, 6, 1, 0, 0, 0, 0, time.UTC), time.Millisecond),
	}
	base := server(t, mustOpen(t, testNow, writeOpsForever(t, t.TempDir(), "far.db", ops)))
	code, body := get(t, base, "/", url.Values{"since": {"beginning"}, "until": {"2261-12-31T00:00:00Z"}, "tz": {"UTC"}})
	if code != http.StatusOK {
		t.Fatalf("status %d: %.300s", code, body)
	}
	trend := regexp.MustCompile(`(?s)<details class="trend" id="trend-notify" open>.*?</details>`).FindString(string(body))
	if n := strings.Count(trend, "<a href="); n != 3 {
		t.Errorf("notify trend: %d columns; want 3", n)
	}
	ticks := regexp.MustCompile(`<text class="tick"[^>]*><title>[^<]*</title>([^<]*)</text>`).FindAllStringSubmatch(trend, -1)
	if len(ticks) != 3 || !strings.HasPrefix(ticks[0][1], "1677-") || !strings.HasPrefix(ticks[2][1], "226") {
		t.Errorf("ticks %q; want from 1677 to the 2260s", ticks)
	}
}
