package viewer_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// TestSummary_Approximate lowers the most operations a window may hold
// for exact percentiles and checks both sides of it against the oracle:
// at the limit every aggregate is exact and unflagged; one operation
// over it, counts, bytes, buckets and histograms stay exact, and every
// percentile is within 1 % of the oracle's nearest rank, flagged
// approximate on its owner. A second request of the same window, which
// starts from the first one's memo, answers the same.
func TestSummary_Approximate(t *testing.T) {
	ops := genOps(3, 3000)
	path := writeOps(t, t.TempDir(), "a.db", ops)
	begin := time.Unix(0, 0)
	for _, c := range []struct {
		name   string
		params url.Values
		f      oracleFilter
	}{
		{"Beginning", url.Values{"since": {"beginning"}}, oracleFilter{since: begin, until: testNow}},
		{"Glob", url.Values{"since": {"beginning"}, "glob": {"orders*"}}, oracleFilter{since: begin, until: testNow, glob: "orders*"}},
		{"Edges", url.Values{"since": {"2026-03-08T12:00:00Z"}, "until": {"2026-03-09T18:00:00Z"}}, oracleFilter{since: time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC), until: time.Date(2026, 3, 9, 18, 0, 0, 0, time.UTC)}},
	} {
		want := oracleSummary(ops, c.f, viewer.DefaultSample)
		want.Spans = oracleSummary(ops, oracleFilter{since: c.f.since, until: c.f.until}, 1).Spans
		total := int64(0)
		for _, o := range want.Operations {
			total += o.Count
		}
		t.Run(c.name+"/Exact", func(t *testing.T) {
			v := mustOpen(t, testNow, path)
			viewer.SetExactLimit(v, total)
			base := server(t, v)
			for range 2 {
				got := summary(t, base, c.params)
				for _, op := range schema.Operations {
					if got.Operations[op].Approximate {
						t.Errorf("operations[%s] approximate at %d operations, the limit", op, total)
					}
					checkHistogram(t, op, got.Operations[op], ops, c.f)
				}
				compareSummary(t, got, want)
			}
		})
		t.Run(c.name+"/Approximate", func(t *testing.T) {
			v := mustOpen(t, testNow, path)
			viewer.SetExactLimit(v, total-1)
			base := server(t, v)
			first := summary(t, base, c.params)
			second := summary(t, base, c.params)
			if !reflect.DeepEqual(first.Operations, second.Operations) {
				t.Errorf("second answer differs from the first:\n%s\nwant\n%s", jsonOf(second.Operations), jsonOf(first.Operations))
			}
			for _, op := range schema.Operations {
				g, w := first.Operations[op], want.Operations[op]
				checkHistogram(t, op, g, ops, c.f)
				if w.Count > 0 && !g.Approximate {
					t.Errorf("operations[%s] not flagged approximate at %d operations, over the limit", op, total)
				}
				checkNear(t, op+".duration_ms", g.DurationMs, w.DurationMs)
				checkNear(t, op+".size_bytes", g.SizeBytes, w.SizeBytes)
				if len(g.BySubscribers) != len(w.BySubscribers) {
					t.Fatalf("operations[%s].by_subscribers has %d groups; want %d", op, len(g.BySubscribers), len(w.BySubscribers))
				}
				for i, sg := range g.BySubscribers {
					ws := w.BySubscribers[i]
					if sg.Subscribers != ws.Subscribers || sg.Count != ws.Count || !sg.Approximate {
						t.Errorf("operations[%s].by_subscribers[%d] = %d×%d approximate %v; want %d×%d approximate", op, i, sg.Count, sg.Subscribers, sg.Approximate, ws.Count, ws.Subscribers)
					}
					checkNear(t, op+".by_subscribers.duration_ms", sg.DurationMs, ws.DurationMs)
				}
				// Everything but the percentiles and the flags is exact.
				g2, w2 := *g, *w
				g2.DurationMs, g2.SizeBytes, w2.DurationMs, w2.SizeBytes = nil, nil, nil, nil
				g2.BySubscribers, w2.BySubscribers, g2.Histogram, w2.Histogram = nil, nil, nil, nil
				g2.Approximate = false
				if !reflect.DeepEqual(g2, w2) {
					t.Errorf("operations[%s] =\n%s\nwant\n%s", op, jsonOf(g2), jsonOf(w2))
				}
			}
		})
	}
}

// checkNear fails t when a percentile of got is further than 1 % from
// the oracle's.
func checkNear(t *testing.T, name string, got, want *model.Percentiles) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Errorf("%s = %v; want %v", name, got, want)
		return
	}
	if got == nil {
		return
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 0.01*math.Abs(want[i])*(1+1e-9) {
			t.Errorf("%s[%d] = %g; want %g within 1%%", name, i, got[i], want[i])
		}
	}
}

// checkHistogram compares the histogram of o with one computed from ops:
// bin 0 holds durations under 1 µs, bin k durations in [2^(k-1), 2^k) µs,
// from the shortest's bin to the longest's.
func checkHistogram(t *testing.T, op string, o *model.Operation, ops []opSpec, f oracleFilter) {
	t.Helper()
	counts := map[int]int64{}
	lo, hi := math.MaxInt, -1
	for _, s := range ops {
		if s.op != op || !f.window(s.start) || !f.match(s) {
			continue
		}
		k := oracleBucket(s.dur.Nanoseconds() / 1000)
		counts[k]++
		lo, hi = min(lo, k), max(hi, k)
	}
	want := []model.HistogramBin{}
	for k := lo; k <= hi; k++ {
		b := model.HistogramBin{BelowMs: math.Pow(2, float64(k)) / 1000, Count: counts[k]}
		if k > 0 {
			b.FromMs = math.Pow(2, float64(k-1)) / 1000
		}
		want = append(want, b)
	}
	if !reflect.DeepEqual(o.Histogram, want) {
		t.Errorf("operations[%s].histogram =\n%s\nwant\n%s", op, jsonOf(o.Histogram), jsonOf(want))
	}
}

// TestPage_Approximate checks that the page says when its percentiles
// are estimated, and says nothing of it when they are exact.
func TestPage_Approximate(t *testing.T) {
	ops := genOps(4, 400)
	path := writeOps(t, t.TempDir(), "a.db", ops)
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
			for _, s := range []string{`id="approximate"`, "more than 1,000,000 operations", "≈", "taking about "} {
				if got := strings.Contains(page, s); got != c.approx {
					t.Errorf("page contains %q: %v; want %v", s, got, c.approx)
				}
			}
		})
	}
}

// TestAggregates_Approximate checks that series buckets, breakdown rows
// and map edges say when their percentiles come from sketches: never at
// the limit, always over it (for every owner with operations), and that
// their p99 stays within 1 % of the exact one.
func TestAggregates_Approximate(t *testing.T) {
	ops := genOps(5, 600)
	path := writeOps(t, t.TempDir(), "a.db", ops)
	type owner struct {
		count  int64
		p99    float64
		approx bool
	}
	// owners fetches path and returns its percentile owners by a name.
	owners := func(t *testing.T, base, path string, extra url.Values) map[string]owner {
		t.Helper()
		p := url.Values{"since": {"beginning"}}
		for k, v := range extra {
			p[k] = v
		}
		code, body := get(t, base, path, p)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		out := map[string]owner{}
		switch path {
		case "/api/series":
			var s model.Series
			mustJSON(t, body, &s)
			for i, b := range s.Buckets {
				for op, pt := range b.Ops {
					if pt.Count > 0 {
						out[fmt.Sprintf("bucket %d %s", i, op)] = owner{pt.Count, *pt.P99Ms, pt.Approximate}
					}
				}
			}
		case "/api/breakdown":
			var b model.Breakdown
			mustJSON(t, body, &b)
			for _, r := range b.Rows {
				out["row "+r.Key] = owner{r.Count, r.DurationMs.P99(), r.Approximate}
			}
		case "/api/map":
			var m model.PubSubMap
			mustJSON(t, body, &m)
			for _, e := range m.Edges {
				out["edge "+e.From+"→"+e.To] = owner{e.Count, e.P99Ms, e.Approximate}
			}
		}
		if len(out) == 0 {
			t.Fatalf("GET %s: no owner of percentiles", path)
		}
		return out
	}
	exact := mustOpen(t, testNow, path)
	viewer.SetExactLimit(exact, int64(len(ops)))
	over := mustOpen(t, testNow, path)
	viewer.SetExactLimit(over, int64(len(ops))-1)
	exactBase, overBase := server(t, exact), server(t, over)
	for _, c := range []struct {
		path  string
		extra url.Values
	}{{"/api/series", url.Values{"step": {"6h"}}}, {"/api/breakdown", url.Values{"by": {"topic"}}}, {"/api/map", nil}} {
		t.Run(c.path, func(t *testing.T) {
			want, got := owners(t, exactBase, c.path, c.extra), owners(t, overBase, c.path, c.extra)
			for name, w := range want {
				g, ok := got[name]
				if w.approx {
					t.Errorf("%s approximate at the limit", name)
				}
				if !ok || g.count != w.count || !g.approx {
					t.Errorf("%s over the limit = %+v; want count %d, approximate", name, g, w.count)
				}
				if math.Abs(g.p99-w.p99) > 0.01*math.Abs(w.p99)*(1+1e-9) {
					t.Errorf("%s p99 = %g; want %g within 1%%", name, g.p99, w.p99)
				}
			}
		})
	}
}

func mustJSON(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
}
