package exporter_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/schema"
)

// stub returns an ended span of trace tid with span id sid, started at
// start, for feeding ExportSpans directly.
func stub(tid, sid uint64, name string, start time.Time, attrs ...attribute.KeyValue) sdktrace.ReadOnlySpan {
	var t trace.TraceID
	var s trace.SpanID
	binary.BigEndian.PutUint64(t[8:], tid)
	t[0] = 1
	binary.BigEndian.PutUint64(s[:], sid)
	return tracetest.SpanStub{
		Name:        name,
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: t, SpanID: s, TraceFlags: trace.FlagsSampled}),
		StartTime:   start,
		EndTime:     start.Add(time.Millisecond),
		Attributes:  attrs,
	}.Snapshot()
}

// handled collects what otel.Handle reports until the test ends.
type handled struct {
	mu   sync.Mutex
	errs []error
}

func collectHandled(t *testing.T) *handled {
	h := &handled{}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { h.mu.Lock(); h.errs = append(h.errs, err); h.mu.Unlock() }))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })
	return h
}

// count returns how many reports contain sub.
func (h *handled) count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, err := range h.errs {
		if strings.Contains(err.Error(), sub) {
			n++
		}
	}
	return n
}

func (h *handled) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return errors.Join(h.errs...).Error()
}

func mustOpenRead(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatalf("OpenRead(%q): %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func queryInt(tb testing.TB, db *sql.DB, q string, args ...any) int64 {
	tb.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

// checkConsistent checks what retention must keep true: every span's
// trace row exists, no trace row is left without spans, the batches table
// (when the file has one) counts the spans there are, and SQLite finds
// the file sound.
func checkConsistent(tb testing.TB, path string) {
	tb.Helper()
	db := mustOpenRead(tb, path)
	if n := queryInt(tb, db, "SELECT count(*) FROM spans WHERE trace NOT IN (SELECT id FROM traces)"); n != 0 {
		tb.Errorf("spans without their trace row = %d; want 0", n)
	}
	if n := queryInt(tb, db, "SELECT count(*) FROM traces WHERE id NOT IN (SELECT trace FROM spans)"); n != 0 {
		tb.Errorf("trace rows without spans = %d; want 0", n)
	}
	if queryInt(tb, db, "SELECT count(*) FROM sqlite_schema WHERE name = 'batches'") == 1 {
		total := queryInt(tb, db, "SELECT count(*) FROM spans")
		if n := queryInt(tb, db, "SELECT coalesce(sum(spans), 0) FROM batches"); n != total {
			tb.Errorf("batches count %d spans; the file has %d", n, total)
		}
		if n := queryInt(tb, db, "SELECT count(*) FROM batches AS b WHERE min_start_ns != (SELECT min(start_ns) FROM spans WHERE id BETWEEN b.first_span AND b.last_span)"); n != 0 {
			tb.Errorf("%d batches with a stale min_start_ns", n)
		}
	}
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		tb.Errorf("integrity_check = %q, %v; want ok", ok, err)
	}
}

// waitFor polls cond, flushing e first, until it holds or 10 s pass.
func waitFor(tb testing.TB, e *exporter.Exporter, what string, cond func() bool) {
	tb.Helper()
	// The race detector slows SQLite about tenfold: a transaction of 16 MiB
	// that fails on a full disk takes 12 to 18 s there.
	wait := 10 * time.Second
	if raceEnabled {
		wait = time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		if e != nil {
			_ = e.ForceFlush(context.Background())
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRetention_MaxAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithMaxAge(7*24*time.Hour), exporter.WithMaxSize(0),
		exporter.WithMaintainEvery(10*time.Millisecond), exporter.WithRetentionStep(300))
	ctx := context.Background()
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour)
	// 3,000 old spans in 300 traces; traces 0-9 also get a young span, so
	// their trace rows must stay.
	var batch []sdktrace.ReadOnlySpan
	for i := range 3000 {
		batch = append(batch, stub(uint64(i%300), uint64(i+1), "old", old.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := range 10 {
		batch = append(batch, stub(uint64(i), uint64(10_000+i), "young", now.Add(-time.Hour)))
	}
	if err := e.ExportSpans(ctx, batch); err != nil {
		t.Fatal(err)
	}
	db := mustOpenRead(t, path)
	waitFor(t, e, "old spans to go", func() bool {
		return queryInt(t, db, "SELECT count(*) FROM spans WHERE name = 'old'") == 0
	})
	if n := queryInt(t, db, "SELECT count(*) FROM spans WHERE name = 'young'"); n != 10 {
		t.Errorf("young spans = %d; want 10", n)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM traces"); n != 10 {
		t.Errorf("traces = %d; want the 10 with young spans", n)
	}
	if n := metaValue(t, path, "retention_deleted_spans"); n != 3000 {
		t.Errorf("meta retention_deleted_spans = %d; want 3000", n)
	}
	if n := metaValue(t, path, "retention_max_age_ns"); n != int64(7*24*time.Hour) {
		t.Errorf("meta retention_max_age_ns = %d; want 7 days", n)
	}
	if n := metaValue(t, path, "retention_max_bytes"); n != 0 {
		t.Errorf("meta retention_max_bytes = %d; want 0", n)
	}
	// A new span of a trace whose row retention deleted must get a new
	// trace row, not the writer's cached id of the old one.
	if err := e.ExportSpans(ctx, []sdktrace.ReadOnlySpan{stub(299, 20_000, "again", now)}); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	var tid string
	if err := db.QueryRow("SELECT trace_id FROM spans_view WHERE name = 'again'").Scan(&tid); err != nil || !strings.HasSuffix(tid, "12b") {
		t.Errorf("trace of the span after retention = %q, %v; want …12b", tid, err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, path)
	if h.count("retention") != 0 {
		t.Errorf("retention errors reported: %v", h)
	}
}

// TestRetention_AgeFromNewest checks that a file of old spans, whose
// newest span is itself old (a replay, a process stopped for weeks), keeps
// the last days before its newest span.
func TestRetention_AgeFromNewest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithMaxAge(24*time.Hour), exporter.WithMaintainEvery(10*time.Millisecond))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var batch []sdktrace.ReadOnlySpan
	for i := range 96 { // one span an hour for four days
		batch = append(batch, stub(uint64(i), uint64(i+1), "s", base.Add(time.Duration(i)*time.Hour)))
	}
	if err := e.ExportSpans(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	db := mustOpenRead(t, path)
	waitFor(t, e, "retention", func() bool { return metaValue(t, path, "retention_deleted_spans") > 0 })
	time.Sleep(50 * time.Millisecond)
	_ = e.ForceFlush(context.Background())
	// Kept: starts after newest - 24h, that is hours 71 to 95.
	if n := queryInt(t, db, "SELECT count(*) FROM spans"); n != 25 {
		t.Errorf("spans kept = %d; want the 25 of the newest day", n)
	}
}

func TestRetention_MaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	const limit = 2 << 20
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithMaxSize(limit), exporter.WithMaxAge(0), exporter.WithMaintainEvery(10*time.Millisecond))
	ctx := context.Background()
	now := time.Now()
	pad := strings.Repeat("x", 1000)
	id := uint64(0)
	// 12 MiB of spans, six times the limit.
	for range 12 {
		var batch []sdktrace.ReadOnlySpan
		for range 1000 {
			id++
			batch = append(batch, stub(id/10, id, "s", now, attribute.String("pad", pad)))
		}
		if err := e.ExportSpans(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db := mustOpenRead(t, path)
	used := func() int64 {
		return queryInt(t, db, "SELECT (SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size)")
	}
	waitFor(t, e, "the file under its limit", func() bool { return used() <= limit })
	var newest int64
	if err := db.QueryRow("SELECT max(id) FROM spans").Scan(&newest); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM spans"); n < 1000 || n > 2000 {
		t.Errorf("spans kept = %d; want the newest 1,000 to 2,000 (2 MiB of 1 KiB spans)", n)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM spans WHERE span_id = ?", binary.BigEndian.AppendUint64(nil, id)); n != 1 {
		t.Error("the newest span was deleted")
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > limit {
		t.Errorf("file size after shutdown = %d; want at most %d", fi.Size(), limit)
	}
	deleted := metaValue(t, path, "retention_deleted_spans")
	if kept := int64(otlptest.StoredSpans(t, path)); kept+deleted != int64(id) {
		t.Errorf("kept %d + deleted %d = %d; want %d", kept, deleted, kept+deleted, id)
	}
	checkConsistent(t, path)
	if n := metaValue(t, path, "retention_max_bytes"); n != limit {
		t.Errorf("meta retention_max_bytes = %d; want %d", n, limit)
	}
	if h.count("retention") != 0 {
		t.Errorf("retention errors reported: %v", h)
	}
}

// TestRetention_NoStall deletes a backlog of 200,000 spans (a restart
// with a shorter max age) while batches keep coming, and checks that no
// flush waits much longer than one batch takes.
func TestRetention_NoStall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	ctx := context.Background()
	old := time.Now().Add(-30 * 24 * time.Hour)
	e, err := exporter.New(path, exporter.WithMaxAge(0))
	if err != nil {
		t.Fatal(err)
	}
	backlog := 60_000
	if raceEnabled {
		backlog = 20_000
	}
	for i := 0; i < backlog; i += 5_000 {
		var batch []sdktrace.ReadOnlySpan
		for j := range 5_000 {
			batch = append(batch, stub(uint64(i+j)/20, uint64(i+j+1), "old", old))
		}
		if err := e.ExportSpans(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	e = mustNew(t, path, exporter.WithMaxAge(7*24*time.Hour), exporter.WithMaintainEvery(10*time.Millisecond))
	db := mustOpenRead(t, path)
	var worst, total time.Duration
	rounds := 0
	id := uint64(backlog)
	for queryInt(t, db, "SELECT count(*) FROM spans WHERE name = 'old'") > 0 {
		var batch []sdktrace.ReadOnlySpan
		for range 512 {
			id++
			batch = append(batch, stub(id/20, id, "new", time.Now()))
		}
		began := time.Now()
		if err := e.ExportSpans(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		worst, total = max(worst, took), total+took
		rounds++
		if rounds > 10_000 {
			t.Fatal("the backlog does not shrink")
		}
	}
	t.Logf("backlog of %d spans deleted during %d flushes of 512 spans: mean flush %v, worst %v", backlog, rounds, total/time.Duration(rounds), worst)
	bound := time.Second
	if raceEnabled {
		bound *= 5
	}
	if worst > bound {
		t.Errorf("worst flush during retention = %v; want under %v", worst, bound)
	}
	checkConsistent(t, path)
}

// TestRetention_CapSmallCommits: the size limit holds with many small
// transactions, each waited for, as collect writes one request at a
// time, when nothing but the check after every commit brings retention
// (maintenance's clock is an hour): the page counts the writer reads
// inside each transaction, before its COMMIT, are the file's after it.
func TestRetention_CapSmallCommits(t *testing.T) {
	const limit = 1 << 20
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithMaxSize(limit), exporter.WithMaxAge(0), exporter.WithMaintainEvery(time.Hour))
	ctx := context.Background()
	big := strings.Repeat("x", 1024)
	const jobs, perJob = 120, 32 // about 4 MiB of attributes: the limit four times over
	var peak int64
	for k := range jobs {
		recs := records(perJob, "small", uint64(k*perJob+1))
		for i := range recs {
			recs[i].Attributes = []attribute.KeyValue{attribute.String("body", big)}
		}
		p, err := e.QueueRecords(ctx, recs, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("jobs[%d]: %v", k, err)
		}
		file, wal, shm := footprint(path)
		peak = max(peak, file+wal+shm)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	if s.Written != jobs*perJob {
		t.Fatalf("written %d; want %d (failed %d, %v)", s.Written, jobs*perJob, s.Failed, s.LastError)
	}
	kept := int64(otlptest.StoredSpans(t, path))
	deleted := metaValue(t, path, "retention_deleted_spans")
	t.Logf("%d spans written, %d kept, %d deleted; footprint peak after a commit %.2f MiB", s.Written, kept, deleted, float64(peak)/(1<<20))
	if deleted == 0 {
		t.Error("retention deleted nothing; want the oldest spans deleted to keep the file under its limit")
	}
	if kept+deleted != s.Written {
		t.Errorf("kept %d + deleted %d != written %d", kept, deleted, s.Written)
	}
	if file, _, _ := footprint(path); file > limit*5/4 {
		t.Errorf("file is %d bytes; want at most 1.25 × %d", file, limit)
	}
	checkConsistent(t, path)
}
