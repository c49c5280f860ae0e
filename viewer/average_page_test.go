package viewer_test

import (
	"math"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// TestPage_FailedShare checks that the average trace draws a phase's
// failed share in proportion: a phase that failed in 3 % of the traces
// and one that failed in 19 % have red parts of 3 % and 19 % of their
// bars, and the text keeps the exact percentages.
func TestPage_FailedShare(t *testing.T) {
	var ops []opSpec
	for i := range 100 {
		o := newOp(schema.OpNotify, testNow.Add(-time.Hour+time.Duration(i)*time.Second), 10*time.Millisecond)
		o.phases = []phaseSpec{
			{name: "rarely", off: 0, dur: 4 * time.Millisecond, failed: i < 3},
			{name: "often", off: 5 * time.Millisecond, dur: 4 * time.Millisecond, failed: i < 19},
			{name: "never", off: 2 * time.Millisecond, dur: 4 * time.Millisecond},
		}
		ops = append(ops, o)
	}
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "a.db", ops)))
	code, body := get(t, base, "/", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %.300s", code, body)
	}
	page := string(body)
	phase := regexp.MustCompile(`<g class="phase"><title>([^<]*)</title><text[^>]*>([^<]*)</text><rect class="b" x="[^"]*" y="[^"]*" width="([^"]*)"[^>]*></rect>(?:<rect class="e phase-failed" x="[^"]*" y="[^"]*" width="([^"]*)")?`)
	num := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("width %q: %v", s, err)
		}
		return f
	}
	want := map[string]float64{"rarely": 0.03, "often": 0.19, "never": 0}
	seen := 0
	for _, m := range phase.FindAllStringSubmatch(page, -1) {
		share, ok := want[m[2]]
		if !ok {
			continue
		}
		seen++
		var red float64
		if m[4] != "" {
			red = num(m[4])
		}
		if got := red / num(m[3]); math.Abs(got-share) > 0.005 {
			t.Errorf("phase %s: red part %.3f of the bar; want %.2f", m[2], got, share)
		}
	}
	if seen != 3 {
		t.Fatalf("%d phases drawn of rarely, often and never; want 3", seen)
	}
	for _, s := range []string{"failed in 3.0%", "failed in 19%"} {
		if !regexp.MustCompile(regexp.QuoteMeta(s)).MatchString(page) {
			t.Errorf("the page does not say %q", s)
		}
	}
}
