package viewer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

func TestOpen_Errors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	os.WriteFile(notDB, []byte(strings.Repeat("not a database ", 20)), 0o644)
	cases := []struct {
		name  string
		paths []string
		want  string
	}{
		{"None", nil, "no trace files"},
		{"Missing", []string{filepath.Join(dir, "missing.db")}, "missing.db"},
		{"NotSQLite", []string{notDB}, "not an SQLite database"},
		{"Directory", []string{dir}, "directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := viewer.Open(c.paths...)
			if err == nil {
				v.Close()
				t.Fatal("Open succeeded; want an error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q; want it to mention %q", err, c.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !os.IsNotExist(err) {
		t.Errorf("Open created the missing file (stat: %v)", err)
	}
}

// TestSummary_MergedFiles spreads operations over three files, with some
// spans stored in two of them, and compares with the oracle over the
// union.
func TestSummary_MergedFiles(t *testing.T) {
	all := genOps(3, 600)
	dir := t.TempDir()
	parts := [][]opSpec{all[:200], all[200:400], all[400:500]}
	shared := all[500:]
	r := newRecorder()
	for _, o := range shared {
		r.record(context.Background(), o)
	}
	sharedSpans := r.c.take()
	var paths []string
	var stored int64
	f := oracleFilter{since: time.Unix(0, 0), until: testNow}
	for i, p := range parts {
		for _, o := range p {
			r.record(context.Background(), o)
		}
		spans := r.c.take()
		if i < 2 {
			spans = append(spans, sharedSpans...) // files 0 and 1 both hold them
		}
		path := filepath.Join(dir, string(rune('a'+i))+".db")
		writeSpans(t, path, spans)
		paths = append(paths, path)
		stored += int64(len(spans))
	}
	base := server(t, mustOpen(t, testNow, paths...))
	got := summary(t, base, url.Values{"since": {"beginning"}})
	want := oracleSummary(all, f, viewer.DefaultSample)
	want.Spans = stored // stored spans are counted per file
	compareSummary(t, got, want)
	if len(got.Files) != 3 {
		t.Errorf("files = %d; want 3", len(got.Files))
	}
}

// TestTrace_Stitched stores a notify in one file and the broadcaster's
// spans, children of a remote parent, in another.
func TestTrace_Stitched(t *testing.T) {
	dir := t.TempDir()
	r := newRecorder()
	start := testNow.Add(-time.Minute)
	ctx, root := r.tracer.Start(context.Background(), "notify orders", trace.WithTimestamp(start),
		trace.WithAttributes(schema.Operation(schema.OpNotify), schema.Topic("orders"), schema.BodySize(12)))
	_, hash := r.tracer.Start(ctx, "hash", trace.WithTimestamp(start))
	hash.AddEvent("hashed", trace.WithTimestamp(start.Add(time.Millisecond)), trace.WithAttributes(attribute.Int("bytes", 12)))
	hash.End(trace.WithTimestamp(start.Add(2 * time.Millisecond)))
	root.End(trace.WithTimestamp(start.Add(20 * time.Millisecond)))
	writeSpans(t, filepath.Join(dir, "subscriber.db"), r.c.take())

	remote := trace.ContextWithRemoteSpanContext(context.Background(), root.SpanContext())
	bctx, recv := r.tracer.Start(remote, "find subscribers", trace.WithTimestamp(start.Add(5*time.Millisecond)),
		trace.WithLinks(trace.Link{SpanContext: hash.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("why", "<b>x</b>")}}))
	_, send := r.tracer.Start(bctx, "<script>alert(1)</script>", trace.WithTimestamp(start.Add(6*time.Millisecond)))
	send.End(trace.WithTimestamp(start.Add(9 * time.Millisecond)))
	recv.End(trace.WithTimestamp(start.Add(10 * time.Millisecond)))
	writeSpans(t, filepath.Join(dir, "broadcaster.db"), r.c.take())

	base := server(t, mustOpen(t, testNow, filepath.Join(dir, "subscriber.db"), filepath.Join(dir, "broadcaster.db")))
	id := root.SpanContext().TraceID().String()
	code, body := get(t, base, "/api/traces/"+id, nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var d model.TraceDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	type row struct {
		name   string
		depth  int
		remote bool
		file   string
	}
	want := []row{{"notify orders", 0, false, "subscriber.db"}, {"hash", 1, false, "subscriber.db"},
		{"find subscribers", 1, true, "broadcaster.db"}, {"<script>alert(1)</script>", 2, false, "broadcaster.db"}}
	if len(d.Spans) != len(want) {
		t.Fatalf("spans = %d; want %d: %s", len(d.Spans), len(want), body)
	}
	for i, w := range want {
		s := d.Spans[i]
		if s.Name != w.name || s.Depth != w.depth || s.ParentRemote != w.remote || filepath.Base(s.File) != w.file {
			t.Errorf("spans[%d] = %s depth %d remote %v in %s; want %+v", i, s.Name, s.Depth, s.ParentRemote, s.File, w)
		}
	}
	if d.DurationMs != 20 || len(d.Spans[1].Events) != 1 || len(d.Spans[2].Links) != 1 {
		t.Errorf("duration %v ms, events %v, links %v", d.DurationMs, d.Spans[1].Events, d.Spans[2].Links)
	}
	// The broadcaster's spans are phases of the notify in the average trace.
	s := summary(t, base, url.Values{"since": {"beginning"}})
	var names []string
	for _, p := range s.AverageTrace["notify"].Phases {
		names = append(names, p.Name)
	}
	if strings.Join(names, "|") != "hash|find subscribers|<script>alert(1)</script>" {
		t.Errorf("phases = %q", names)
	}
	// The page shows hostile names as text.
	code, page := get(t, base, "/", url.Values{"since": {"beginning"}, "trace": {id}})
	if code != http.StatusOK {
		t.Fatalf("page: status %d", code)
	}
	if strings.Contains(string(page), "<script>") || strings.Contains(string(page), "<b>x</b>") {
		t.Error("page holds unescaped span data")
	}
	if !strings.Contains(string(page), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("page does not show the hostile span name as text")
	}
	if code, _ := get(t, base, "/api/traces/"+strings.Repeat("ab", 16), nil); code != http.StatusNotFound {
		t.Errorf("unknown trace: status %d; want 404", code)
	}
}

func TestTraces_Paging(t *testing.T) {
	var ops []opSpec
	for i := 0; i < 120; i++ {
		o := newOp("notify", testNow.Add(-time.Duration(i+1)*time.Minute), time.Millisecond)
		o.topic = []string{"orders", "users"}[i%2]
		ops = append(ops, o)
	}
	base := server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "t.db", ops)))
	var seen []string
	for offset := 0; ; offset += 25 {
		code, body := get(t, base, "/api/traces", url.Values{"since": {"beginning"}, "glob": {"ord*"}, "limit": {"25"}, "offset": {strconv.Itoa(offset)}})
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var l model.TraceList
		json.Unmarshal(body, &l)
		for _, it := range l.Traces {
			if it.Topic != "orders" {
				t.Errorf("trace of topic %q listed for glob ord*", it.Topic)
			}
			if len(seen) > 0 && it.Start.After(mustTime(t, seen[len(seen)-1])) {
				t.Errorf("traces not newest first")
			}
			seen = append(seen, it.Start.Format(time.RFC3339Nano))
		}
		if !l.More {
			break
		}
	}
	if len(seen) != 60 {
		t.Errorf("listed %d traces; want 60", len(seen))
	}
}

// TestSummary_DuringWriteTransaction holds a large write transaction open
// on the file and checks that the viewer still answers, from the
// committed data, without waiting.
func TestSummary_DuringWriteTransaction(t *testing.T) {
	ops := genOps(4, 300)
	path := writeOps(t, t.TempDir(), "busy.db", ops)
	base := server(t, mustOpen(t, testNow, path))
	before := summary(t, base, url.Values{"since": {"beginning"}})

	ctx := context.Background()
	db, err := schema.OpenWrite(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	// Copy every span 64 times over (some 100,000 rows, more than the page
	// cache holds, so SQLite spills them to the WAL before any commit).
	for i := 0; i < 6; i++ {
		if _, err := conn.ExecContext(ctx, `INSERT INTO spans (trace, span_id, parent_span_id, parent_remote, flags, name, kind, start_ns, end_ns,
			status_code, attributes, dropped_attributes, dropped_events, dropped_links, child_count, resource, scope, op, topic, glob, broadcaster, body_size, subscribers, stateful)
			SELECT trace, span_id, parent_span_id, parent_remote, flags, name, kind, start_ns, end_ns,
			status_code, attributes, dropped_attributes, dropped_events, dropped_links, child_count, resource, scope, op, topic, glob, broadcaster, body_size, subscribers, stateful FROM spans`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.ExecContext(ctx, "UPDATE meta SET value = 99 WHERE key = ?", schema.MetaDroppedSpans); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	during := summary(t, base, url.Values{"since": {"beginning"}})
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("summary took %v beside the open transaction", d)
	}
	if during.Spans != before.Spans || during.Dropped != before.Dropped || during.Operations["notify"].Count != before.Operations["notify"].Count {
		t.Errorf("during the transaction: spans %d dropped %d; want %d, %d (the committed state)", during.Spans, during.Dropped, before.Spans, before.Dropped)
	}
	if code, _ := get(t, base, "/", url.Values{"since": {"beginning"}}); code != http.StatusOK {
		t.Errorf("page: status %d", code)
	}
}

// TestSummary_Footprint: each file's WAL and the episodes of checkpoints
// held back, which the exporter counts in meta, are shown beside the
// file, on the page too.
func TestSummary_Footprint(t *testing.T) {
	ops := genOps(5, 50)
	path := writeOps(t, t.TempDir(), "ckpt.db", ops)
	ctx := context.Background()
	db, err := schema.OpenWrite(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, 3) ON CONFLICT (key) DO UPDATE SET value = 3", schema.MetaCheckpointsBlocked); err != nil {
		t.Fatal(err)
	}
	defer db.Close() // open while the viewer reads: the WAL stays beside the file
	base := server(t, mustOpen(t, testNow, path))
	s := summary(t, base, url.Values{"since": {"beginning"}})
	if len(s.Files) != 1 {
		t.Fatalf("files = %d; want 1", len(s.Files))
	}
	f := s.Files[0]
	if f.CheckpointsBlocked != 3 {
		t.Errorf("checkpoints_blocked = %d; want 3", f.CheckpointsBlocked)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if f.WALBytes <= 0 || f.WALBytes > fi.Size() {
		t.Errorf("wal_bytes = %d; want the WAL's size, %d now (it only grows while we look)", f.WALBytes, fi.Size())
	}
	code, body := get(t, base, "/", url.Values{"since": {"beginning"}})
	if code != http.StatusOK || !strings.Contains(string(body), `<td title="3" class="warn">3</td>`) {
		t.Errorf("page: status %d; want the 3 checkpoints held back in the files table, marked", code)
	}
}

// TestSummary_CorruptPages: a file whose span pages are overwritten
// (its first pages intact, so that it opens) is an error naming the file,
// on every request, and never a crash.
func TestSummary_CorruptPages(t *testing.T) {
	path := writeOps(t, t.TempDir(), "corrupt.db", genOps(4, 3000))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// Every page of the middle half of the file, a span table's leaves
	// among them, overwritten with a pattern.
	const page = 16384
	garbage := bytes.Repeat([]byte{0xA5, 0x5A, 0xFF, 0x00}, page/4)
	for off := fi.Size() / 4 / page * page; off < fi.Size()*3/4; off += page {
		if _, err := f.WriteAt(garbage, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	v := mustOpen(t, testNow, path)
	base := server(t, v)
	for i := range 3 {
		_, err := v.Summary(context.Background(), viewer.QueryOf(t, v, url.Values{"since": {"beginning"}}))
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("summary %d of a corrupt file: %v; want an error naming the file and saying it is malformed", i+1, err)
		}
		if code, _ := get(t, base, "/api/summary", url.Values{"since": {"beginning"}}); code != http.StatusInternalServerError {
			t.Errorf("request %d on a corrupt file: status %d; want 500", i+1, code)
		}
	}
}
