package viewer_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestSummary_FollowsTheFile asks one viewer for summaries while the file
// changes under it: retention deletes spans of batches it has read before,
// and new batches arrive. Each answer must be the oracle's for what the
// file holds at that moment, unfiltered and filtered, as a fresh viewer
// would compute it.
func TestSummary_FollowsTheFile(t *testing.T) {
	old := genOps(5, 300)
	for i := range old {
		old[i].start = old[i].start.Add(-10 * 24 * time.Hour)
	}
	young := genOps(6, 300)
	later := genOps(7, 200)
	path := filepath.Join(t.TempDir(), "live.db")
	r := newRecorder()
	for _, o := range old {
		r.record(context.Background(), o)
	}
	oldSpans := r.c.take()
	for _, o := range young {
		r.record(context.Background(), o)
	}
	// One session that keeps everything: the old and the young spans
	// share batches, so that retention later changes batches the viewer
	// has read, not only deletes them.
	keepAll := func(spans []sdktrace.ReadOnlySpan) {
		t.Helper()
		e, err := exporter.New(path, exporter.WithMaxAge(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ExportSpans(context.Background(), spans); err != nil {
			t.Fatal(err)
		}
		if err := e.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	keepAll(append(oldSpans, r.c.take()...))
	base := server(t, mustOpen(t, testNow, path))

	check := func(name string, ops []opSpec) {
		t.Helper()
		begin := time.Unix(0, 0)
		for _, c := range []struct {
			params url.Values
			f      oracleFilter
		}{
			{url.Values{"since": {"beginning"}}, oracleFilter{since: begin, until: testNow}},
			{url.Values{"since": {"24h-ago"}}, oracleFilter{since: testNow.Add(-24 * time.Hour), until: testNow}},
			{url.Values{"since": {"beginning"}, "glob": {"orders*"}}, oracleFilter{since: begin, until: testNow, glob: "orders*"}},
			{url.Values{"since": {"beginning"}, "broadcaster": {"b1:3003"}, "topic": {"orders"}}, oracleFilter{since: begin, until: testNow, broadcaster: "b1:3003", topic: "orders"}},
		} {
			want := oracleSummary(ops, c.f, viewer.DefaultSample)
			want.Spans = oracleSummary(ops, oracleFilter{since: c.f.since, until: c.f.until}, 1).Spans
			t.Run(name+"/"+c.params.Encode(), func(t *testing.T) {
				compareSummary(t, summary(t, base, c.params), want)
			})
		}
	}
	check("Written", append(append([]opSpec(nil), old...), young...))

	e, err := exporter.New(path, exporter.WithMaxAge(5*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		f := summary(t, base, url.Values{"since": {"beginning"}}).Files[0]
		if f.Retention != nil && f.Retention.DeletedSpans == int64(len(oldSpans)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention deleted %+v spans; want %d", f.Retention, len(oldSpans))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("Retained", young)

	for _, o := range later {
		r.record(context.Background(), o)
	}
	keepAll(r.c.take())
	check("Appended", append(append([]opSpec(nil), young...), later...))
}
