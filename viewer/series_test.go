package viewer_test

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// seriesOf fetches /api/series and decodes it.
func seriesOf(tb testing.TB, base string, params url.Values) *viewer.Series {
	tb.Helper()
	return getJSON[viewer.Series](tb, base, "/api/series", params)
}

// writeShared writes all into three files, the last quarter of the
// operations into the first two of them both, and returns the paths.
func writeShared(tb testing.TB, all []opSpec) []string {
	tb.Helper()
	dir := tb.TempDir()
	q := len(all) / 4
	r := newRecorder()
	for _, o := range all[3*q:] {
		r.record(context.Background(), o)
	}
	shared := r.c.take()
	var paths []string
	for i, part := range [][]opSpec{all[:q], all[q : 2*q], all[2*q : 3*q]} {
		for _, o := range part {
			r.record(context.Background(), o)
		}
		spans := r.c.take()
		if i < 2 {
			spans = append(spans, shared...)
		}
		path := filepath.Join(dir, string(rune('a'+i))+".db")
		writeSpans(tb, path, spans)
		paths = append(paths, path)
	}
	return paths
}

// oracleSeries computes the buckets from first, one step apart, up to
// until, by testing every operation against every bucket.
func oracleSeries(all []opSpec, f oracleFilter, first time.Time, step time.Duration) []viewer.SeriesBucket {
	var out []viewer.SeriesBucket
	for start := first; start.Before(f.until); start = start.Add(step) {
		b := viewer.SeriesBucket{Start: start, Ops: map[string]*viewer.SeriesPoint{}}
		for _, op := range schema.Operations {
			p := &viewer.SeriesPoint{}
			var durs []float64
			bytes := new(big.Int)
			for _, o := range all {
				if o.op != op || !f.match(o) || o.start.Before(start) || !o.start.Before(start.Add(step)) {
					continue
				}
				p.Count++
				if o.failed {
					p.Errors++
				}
				if o.size >= 0 {
					bytes.Add(bytes, big.NewInt(o.size))
				}
				durs = append(durs, ms(o.dur))
			}
			p.Bytes = saturate(bytes)
			if pc := oraclePct(durs); pc != nil {
				p50, p99 := pc[2], pc[5]
				p.P50Ms, p.P99Ms = &p50, &p99
			}
			b.Ops[op] = p
		}
		out = append(out, b)
	}
	return out
}

func compareSeries(t *testing.T, got *viewer.Series, want []viewer.SeriesBucket, step time.Duration) {
	t.Helper()
	if got.StepMs != step.Milliseconds() {
		t.Errorf("step_ms = %d; want %d", got.StepMs, step.Milliseconds())
	}
	if len(got.Buckets) != len(want) {
		t.Fatalf("%d buckets; want %d", len(got.Buckets), len(want))
	}
	for i := range want {
		g, w := got.Buckets[i], want[i]
		if !g.Start.Equal(w.Start) {
			t.Errorf("bucket %d starts %s; want %s", i, g.Start, w.Start)
		}
		for _, op := range schema.Operations {
			if jsonOf(g.Ops[op]) != jsonOf(w.Ops[op]) {
				t.Errorf("bucket %d (%s) %s = %s; want %s", i, w.Start, op, jsonOf(g.Ops[op]), jsonOf(w.Ops[op]))
			}
		}
	}
}

// TestSeries_Edges puts operations on the edges of 10 s buckets, leaves
// buckets empty, and starts and ends the window inside a bucket.
func TestSeries_Edges(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC)
	at := func(d time.Duration, failed bool, dur time.Duration) opSpec {
		o := newOp(schema.OpNotify, t0.Add(d), dur)
		o.failed, o.size, o.topic = failed, 10, "edges"
		return o
	}
	ops := []opSpec{
		at(time.Second, false, time.Millisecond),                            // bucket 0, before since
		at(3*time.Second, true, 2*time.Millisecond),                         // bucket 0, at since
		at(10*time.Second-1, false, 3*time.Millisecond),                     // bucket 0, last ns
		at(10*time.Second, true, 4*time.Millisecond),                        // bucket 1, first ns
		at(25*time.Second, false, 5*time.Millisecond),                       // bucket 2
		at(50*time.Second, false, 6*time.Millisecond),                       // bucket 5 (3 and 4 empty)
		at(55*time.Second-1, false, 7*time.Millisecond),                     // bucket 5, last ns of the window
		at(55*time.Second, false, 8*time.Millisecond),                       // at until: out
		newOp(schema.OpReceive, t0.Add(20*time.Second), 9*time.Millisecond), // bucket 2, another op
	}
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "e.db", ops)))
	f := oracleFilter{since: t0.Add(3 * time.Second), until: t0.Add(55 * time.Second)}
	params := url.Values{"since": {f.since.Format(time.RFC3339Nano)}, "until": {f.until.Format(time.RFC3339Nano)}, "step": {"10s"}}
	got := seriesOf(t, base, params)
	want := oracleSeries(ops, f, t0, 10*time.Second)
	if len(want) != 6 {
		t.Fatalf("oracle: %d buckets; want 6", len(want))
	}
	compareSeries(t, got, want, 10*time.Second)
	// Exact numbers, independent of the oracle code too.
	for i, n := range []int64{2, 1, 1, 0, 0, 2} {
		if c := got.Buckets[i].Ops["notify"].Count; c != n {
			t.Errorf("bucket %d: %d notifies; want %d", i, c, n)
		}
	}
	if p := got.Buckets[3].Ops["notify"]; p.P50Ms != nil || p.P99Ms != nil {
		t.Errorf("empty bucket: p50 %v, p99 %v; want null", p.P50Ms, p.P99Ms)
	}
	if b := got.Buckets[0].Ops["notify"]; b.Errors != 1 || *b.P50Ms != 2 || *b.P99Ms != 3 || b.Bytes != 20 {
		t.Errorf("bucket 0: %s; want 1 error, p50 2 ms, p99 3 ms, 20 bytes", jsonOf(b))
	}
	// The filter applies: another topic leaves every bucket empty.
	params.Set("topic", "other")
	for i, b := range seriesOf(t, base, params).Buckets {
		if b.Ops["notify"].Count != 0 || b.Ops["receive"].Count != 0 {
			t.Errorf("topic=other: bucket %d not empty", i)
		}
	}
}

// TestSeries_Random compares the series of generated operations, in one
// file and spread over three with shared spans, with the oracle.
func TestSeries_Random(t *testing.T) {
	ops := genOps(31, 800)
	one := mustOpen(t, testNow, writeOps(t, t.TempDir(), "r.db", ops))
	three := mustOpen(t, testNow, writeShared(t, ops)...)
	cases := []struct {
		name   string
		params url.Values
		f      oracleFilter
		first  time.Time
		step   time.Duration
	}{
		{"Hour", url.Values{"since": {"2026-03-08T06:30:07Z"}, "step": {"1h"}},
			oracleFilter{since: time.Date(2026, 3, 8, 6, 30, 7, 0, time.UTC), until: testNow}, time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC), time.Hour},
		{"Default24h", url.Values{"broadcaster": {"b1:3003"}},
			oracleFilter{since: testNow.Add(-24 * time.Hour), until: testNow, broadcaster: "b1:3003"}, testNow.Add(-24 * time.Hour), 30 * time.Minute},
		{"SevenMinutesGlob", url.Values{"since": {"2026-03-10T03:03:03.5+01:00"}, "until": {"2026-03-10T09:00:00Z"}, "step": {"7m"}, "glob": {"orders*"}},
			oracleFilter{since: time.Date(2026, 3, 10, 2, 3, 3, 5e8, time.UTC), until: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), glob: "orders*"},
			// 2026-03-10T02:03:03.5Z is 29,551,803 min + 3.5 s after the epoch;
			// 29,551,803 = 7·4,221,686 + 1, so the bucket began 1 min 3.5 s earlier.
			time.Date(2026, 3, 10, 2, 2, 0, 0, time.UTC), 7 * time.Minute},
	}
	for _, c := range cases {
		want := oracleSeries(ops, c.f, c.first, c.step)
		for name, v := range map[string]*viewer.Viewer{"OneFile": one, "ThreeFiles": three} {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				compareSeries(t, seriesOf(t, server(t, v), c.params), want, c.step)
			})
		}
	}
}

// TestSeries_DefaultStep checks the step picked for windows of several
// lengths, and the buckets it makes.
func TestSeries_DefaultStep(t *testing.T) {
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "d.db", genOps(3, 50))))
	for _, c := range []struct {
		since, until string
		step         time.Duration
		buckets      int
	}{
		{"1m-ago", "", time.Second, 60},
		{"1h-ago", "", 30 * time.Second, 120},
		{"24h-ago", "", 30 * time.Minute, 48},
		{"2026-03-10T11:59:59.5Z", "", time.Second, 1},
		{"2026-03-10T10:00:01Z", "", time.Minute, 120},
		{"2026-03-10T09:59:59Z", "", 5 * time.Minute, 25},
		{"2026-03-07T12:00:00Z", "", time.Hour, 72},
		{"2025-08-22T12:00:00Z", "", 24 * time.Hour, 201}, // 200 days from a noon
		{"2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z", time.Second, 0},
	} {
		params := url.Values{"since": {c.since}}
		if c.until != "" {
			params.Set("until", c.until)
		}
		s := seriesOf(t, base, params)
		if s.StepMs != c.step.Milliseconds() || len(s.Buckets) != c.buckets {
			t.Errorf("since %s: step %d ms, %d buckets; want %d ms, %d", c.since, s.StepMs, len(s.Buckets), c.step.Milliseconds(), c.buckets)
		}
	}
}

// TestSeries_BadStep checks that what is not a step from 1s to 24h, or
// makes too many buckets, is a 400 that says what was expected.
func TestSeries_BadStep(t *testing.T) {
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "b.db", genOps(3, 20))))
	for _, step := range []string{"0s", "999ms", "25h", "1000500us", "abc", "-1s", "1e9h", "9223372036854775807ns", `<b>"'`, "10"} {
		code, body := get(t, base, "/api/series", url.Values{"step": {step}})
		if code != http.StatusBadRequest || !json.Valid(body) || !strings.Contains(string(body), "want a Go duration from 1s to 24h0m0s") {
			t.Errorf("step=%q: status %d: %s", step, code, body)
		}
	}
	code, body := get(t, base, "/api/series", url.Values{"step": {"1s"}, "since": {"24h-ago"}})
	if code != http.StatusBadRequest || !strings.Contains(string(body), "at most 1440 buckets") {
		t.Errorf("86,400 buckets: status %d: %s", code, body)
	}
	if code, _ := get(t, base, "/api/series", url.Values{"step": {"1s", "2s"}}); code != http.StatusBadRequest {
		t.Errorf("two steps: status %d; want 400", code)
	}
}
