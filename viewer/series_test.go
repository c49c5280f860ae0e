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

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// seriesOf fetches /api/series and decodes it.
func seriesOf(tb testing.TB, base string, params url.Values) *model.Series {
	tb.Helper()
	return getJSON[model.Series](tb, base, "/api/series", params)
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

// oracleSeries computes the buckets of step over the range of the
// operations in f's window (whatever their filters), from the first one's
// start rounded down to a multiple of step since the epoch to the last
// one's, by testing every operation against every bucket.
func oracleSeries(all []opSpec, f oracleFilter, step time.Duration) []model.SeriesBucket {
	lo, hi := f.until, f.since
	for _, o := range all {
		if !o.start.Before(f.since) && o.start.Before(f.until) {
			if o.start.Before(lo) {
				lo = o.start
			}
			if !o.start.Before(hi) {
				hi = o.start.Add(1)
			}
		}
	}
	if hi.Before(lo) {
		lo, hi = f.since, f.until
	}
	ns := lo.UnixNano()
	first := time.Unix(0, ns-((ns%int64(step))+int64(step))%int64(step)).UTC()
	var out []model.SeriesBucket
	for start := first; start.Before(hi); start = start.Add(step) {
		b := model.SeriesBucket{Start: start, Ops: map[string]*model.SeriesPoint{}}
		for _, op := range schema.Operations {
			p := &model.SeriesPoint{}
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

func compareSeries(t *testing.T, got *model.Series, want []model.SeriesBucket, step time.Duration) {
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
	want := oracleSeries(ops, f, 10*time.Second)
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
		step   time.Duration
	}{
		{"Hour", url.Values{"since": {"2026-03-08T06:30:07Z"}, "step": {"1h"}},
			oracleFilter{since: time.Date(2026, 3, 8, 6, 30, 7, 0, time.UTC), until: testNow}, time.Hour},
		{"Default24h", url.Values{"broadcaster": {"b1:3003"}},
			oracleFilter{since: testNow.Add(-24 * time.Hour), until: testNow, broadcaster: "b1:3003"}, 30 * time.Minute},
		{"SevenMinutesGlob", url.Values{"since": {"2026-03-10T03:03:03.5+01:00"}, "until": {"2026-03-10T09:00:00Z"}, "step": {"7m"}, "glob": {"orders*"}},
			oracleFilter{since: time.Date(2026, 3, 10, 2, 3, 3, 5e8, time.UTC), until: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), glob: "orders*"},
			7 * time.Minute},
	}
	for _, c := range cases {
		want := oracleSeries(ops, c.f, c.step)
		for name, v := range map[string]*viewer.Viewer{"OneFile": one, "ThreeFiles": three} {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				compareSeries(t, seriesOf(t, server(t, v), c.params), want, c.step)
			})
		}
	}
}

// TestSeries_DefaultStep checks the range and the step picked for
// operations over several lengths of time, and the buckets they make: the
// series covers the window's operations, not the whole window, so a short
// run in a long window gets a step of its own; a range of any length,
// from 1970 on, gets a step.
func TestSeries_DefaultStep(t *testing.T) {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, c := range []struct {
		name         string
		first, last  time.Time
		since, until string
		step         time.Duration
		buckets      int
		start        time.Time
	}{
		{"TwentySecondsOfADay", testNow.Add(-20 * time.Second), testNow.Add(-time.Second), "24h-ago", "", time.Second, 20, testNow.Add(-20 * time.Second)},
		{"Hour", testNow.Add(-time.Hour + time.Second/2), testNow.Add(-1), "1h-ago", "", 30 * time.Second, 120, testNow.Add(-time.Hour)},
		{"Day", testNow.Add(-24 * time.Hour), testNow.Add(-1), "24h-ago", "", 30 * time.Minute, 48, testNow.Add(-24 * time.Hour)},
		{"OpBeforeWindow", testNow.Add(-25 * time.Hour), testNow.Add(-10 * time.Minute), "1h-ago", "", time.Second, 1, testNow.Add(-10 * time.Minute)},
		{"TwoHoursLessASecond", at("2026-03-10T10:00:01Z"), testNow.Add(-1), "", "", time.Minute, 120, at("2026-03-10T10:00:00Z")},
		{"TwoHoursAndASecond", at("2026-03-10T09:59:59Z"), testNow.Add(-1), "penultimate-midnight", "", 5 * time.Minute, 25, at("2026-03-10T09:55:00Z")},
		{"ThreeDays", at("2026-03-07T12:00:00Z"), testNow.Add(-1), "beginning", "", time.Hour, 72, at("2026-03-07T12:00:00Z")},
		// 200 days: 24h makes 200 buckets, 2 days 101 from a multiple of 2 days.
		{"TwoHundredDays", at("2025-08-22T12:00:00Z"), testNow.Add(-1), "beginning", "", 48 * time.Hour, 101, at("2025-08-22T00:00:00Z")},
		// From 1970: 20,522.5 days cut into at most 119 steps of 173 days.
		{"SinceTimeZero", time.Unix(0, 0), testNow.Add(-1), "beginning", "", 173 * 24 * time.Hour, 119, time.Unix(0, 0)},
		{"Empty", testNow.Add(-time.Hour), testNow.Add(-time.Hour), "2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z", time.Second, 0, time.Time{}},
		{"NoneInWindow", testNow.Add(-48 * time.Hour), testNow.Add(-47 * time.Hour), "24h-ago", "", 30 * time.Minute, 48, testNow.Add(-24 * time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			ops := []opSpec{newOp(schema.OpNotify, c.first, time.Millisecond), newOp(schema.OpReceive, c.last, time.Millisecond)}
			base := server(t, mustOpen(t, testNow, writeOpsForever(t, t.TempDir(), "d.db", ops)))
			params := url.Values{}
			for k, v := range map[string]string{"since": c.since, "until": c.until} {
				if v != "" {
					params.Set(k, v)
				}
			}
			s := seriesOf(t, base, params)
			if s.StepMs != c.step.Milliseconds() || len(s.Buckets) != c.buckets {
				t.Fatalf("step %d ms, %d buckets; want %d ms, %d", s.StepMs, len(s.Buckets), c.step.Milliseconds(), c.buckets)
			}
			if c.buckets > 0 && !s.Buckets[0].Start.Equal(c.start) {
				t.Errorf("first bucket at %s; want %s", s.Buckets[0].Start, c.start)
			}
			var n int64
			for _, b := range s.Buckets {
				n += b.Ops[schema.OpNotify].Count + b.Ops[schema.OpReceive].Count
			}
			f := oracleFilter{since: s.Since, until: s.Until}
			var want int64
			for _, o := range ops {
				if f.match(o) {
					want++
				}
			}
			if n != want {
				t.Errorf("%d operations in the buckets; want %d", n, want)
			}
			// The page draws the same series.
			if code, body := get(t, base, "/", params); code != http.StatusOK {
				t.Errorf("page: status %d: %.300s", code, body)
			}
		})
	}
}

// TestSeries_DayOfMinutes checks that a day of one-minute steps works
// whatever second the window starts on, as the README's example asks.
func TestSeries_DayOfMinutes(t *testing.T) {
	since := testNow.Add(-24*time.Hour + 30*time.Second)
	ops := []opSpec{newOp(schema.OpNotify, since, time.Millisecond), newOp(schema.OpNotify, testNow.Add(-1), time.Millisecond),
		newOp(schema.OpNotify, since.Add(24*time.Hour-1), time.Millisecond)}
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "m.db", ops)))
	for _, c := range []struct {
		params url.Values
		n      int
	}{
		{url.Values{"step": {"1m"}, "since": {"24h-ago"}}, 1440},
		{url.Values{"step": {"1m"}, "since": {since.Format(time.RFC3339)}}, 1440},
		{url.Values{"step": {"1m"}, "since": {since.Format(time.RFC3339)}, "until": {since.Add(24 * time.Hour).Format(time.RFC3339)}}, 1441},
	} {
		code, body := get(t, base, "/api/series", c.params)
		if code != http.StatusOK {
			t.Fatalf("%v: status %d: %s", c.params, code, body)
		}
		var s model.Series
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Buckets) != c.n {
			t.Errorf("%v: %d buckets; want %d", c.params, len(s.Buckets), c.n)
		}
	}
}

// writeOpsForever is writeOps with retention off, for operations older
// than its default age.
func writeOpsForever(tb testing.TB, dir, name string, ops []opSpec) string {
	tb.Helper()
	r := newRecorder()
	for _, o := range ops {
		r.record(context.Background(), o)
	}
	path := filepath.Join(dir, name)
	e, err := exporter.New(path, exporter.WithMaxAge(0))
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.ExportSpans(context.Background(), r.c.take()); err != nil {
		tb.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return path
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
