package viewer_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestLabels_Approximate checks that wherever percentiles from a sketch
// are shown, they say so: the page's trends, breakdowns and note, and the
// terminal's summary and breakdowns (lonelytrace summary); and that
// exact ones carry no mark.
func TestLabels_Approximate(t *testing.T) {
	path := writeOps(t, t.TempDir(), "a.db", genOps(4, 400))
	params := url.Values{"since": {"beginning"}}
	for _, c := range []struct {
		name   string
		limit  int64
		approx bool
	}{{"Exact", 400, false}, {"Approximate", 399, true}} {
		t.Run(c.name, func(t *testing.T) {
			v := mustOpen(t, testNow, path)
			viewer.SetExactLimit(v, c.limit)
			code, body := get(t, server(t, v), "/", params)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			page := string(body)
			if strings.Contains(page, "the charts are exact") {
				t.Error("the page says the charts are exact")
			}
			trend := regexp.MustCompile(`(?s)<details class="trend" id="trend-notify".*?</details>`).FindString(page)
			if got := strings.Contains(trend, "duration, ≈ estimated within 1 %"); got != c.approx {
				t.Errorf("notify trend marks its durations estimated: %v; want %v", got, c.approx)
			}
			bd := regexp.MustCompile(`(?s)<h3 id="breakdown-notify-topic">.*?</table>`).FindString(page)
			if got := strings.Contains(bd, "≈"); got != c.approx {
				t.Errorf("notify by topic marks its percentiles: %v; want %v", got, c.approx)
			}
			s, err := v.Summary(context.Background(), viewer.QueryOf(t, v, params))
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			if err := viewer.WriteSummaryText(&text, s); err != nil {
				t.Fatal(err)
			}
			b, err := v.Breakdown(context.Background(), viewer.BreakdownOf(t, v, url.Values{"since": {"beginning"}, "by": {"topic"}}))
			if err != nil {
				t.Fatal(err)
			}
			if err := viewer.WriteBreakdownText(&text, b); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"notify ≈", "estimated from a sketch within 1 %"} {
				if got := strings.Count(text.String(), want); (got > 0) != c.approx {
					t.Errorf("summary text has %q %d times; want some: %v\n%s", want, got, c.approx, text.String())
				}
			}
			if got := strings.Count(text.String(), "≈ marks percentiles"); c.approx && got != 2 {
				t.Errorf("summary text explains ≈ %d times; want 2 (durations, breakdown)", got)
			}
		})
	}
}
