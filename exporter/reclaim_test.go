package exporter_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// distinctRecords returns n records from seq on, one trace each, whose
// resource, scope or attribute key (as unique says) is their own, as
// short-lived functions send them: the sequence number is in the span's
// name and in the value that makes it unique, so that what is read back
// can be checked against it.
func distinctRecords(unique string, seq, n int, start time.Time) []schema.Span {
	pad := strings.Repeat("r", 200)
	out := make([]schema.Span, n)
	for i := range out {
		k := seq + i
		s := &out[i]
		binary.BigEndian.PutUint64(s.TraceID[8:], uint64(k+1))
		s.TraceID[0] = 2
		binary.BigEndian.PutUint64(s.SpanID[:], uint64(k+1))
		s.Name = strconv.Itoa(k)
		s.Kind = trace.SpanKindInternal
		s.Start, s.End = start, start.Add(time.Millisecond)
		s.Resource.Attributes = []attribute.KeyValue{attribute.String("service.name", "fn"), attribute.String("pad", pad)}
		s.Scope.Name = "scope"
		s.Attributes = []attribute.KeyValue{attribute.Int("seq", k)}
		switch unique {
		case "resources":
			s.Resource.Attributes = append(s.Resource.Attributes, attribute.String("service.instance.id", s.Name))
		case "scopes":
			s.Scope.Name = "scope." + s.Name
		case "keys":
			s.Attributes = append(s.Attributes, attribute.Int("key."+s.Name, k))
		}
	}
	return out
}

// TestRetention_Reclaims fills a file with a small size limit with spans
// each of its own resource, scope or attribute key: retention must take
// the rows no kept span refers to with the spans, so that the file stays
// within its limit and keeps the newest spans, and those spans must read
// back whole, through a reader that was open while rows went too.
func TestRetention_Reclaims(t *testing.T) {
	for _, unique := range []string{"resources", "scopes", "keys"} {
		t.Run(unique, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			const limit = 2 << 20
			h := collectHandled(t)
			e := mustNew(t, path, exporter.WithMaxSize(limit), exporter.WithMaxAge(0), exporter.WithMaintainEvery(10*time.Millisecond))
			ctx := context.Background()
			db := mustOpenRead(t, path)
			// A reader kept open across the reclamation, as the viewer's is.
			reader := schema.NewReader(db)
			now := time.Now()
			batch, batches := 500, 40 // 20,000 spans, about 6 MiB of rows
			if raceEnabled {
				batches = 16
			}
			seq := 0
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			var flushes []time.Duration
			for b := range batches {
				began := time.Now()
				if err := e.ExportRecords(ctx, distinctRecords(unique, seq, batch, now)); err != nil {
					t.Fatal(err)
				}
				seq += batch
				if err := e.ForceFlush(ctx); err != nil {
					t.Fatal(err)
				}
				flushes = append(flushes, time.Since(began))
				if b == batches/2 {
					checkRead(t, reader, unique, 100)
				}
			}
			used := func() int64 {
				return queryInt(t, db, "SELECT (SELECT page_count - freelist_count FROM pragma_page_count, pragma_freelist_count) * (SELECT page_size FROM pragma_page_size)")
			}
			t.Logf("%d spans written in %v; flushes %v", seq, time.Since(now), flushes)
			waitFor(t, e, "the file under its limit", func() bool { return used() <= limit })
			t.Logf("under the limit after %v", time.Since(now))
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)

			kept := queryInt(t, db, "SELECT count(*) FROM spans")
			if kept < 1000 {
				t.Errorf("spans kept = %d; want at least 1,000 (2 MiB of spans of about 300 bytes, less the WAL's share)", kept)
			}
			if n := queryInt(t, db, "SELECT count(*) FROM spans WHERE name = ?", strconv.Itoa(seq-1)); n != 1 {
				t.Error("the newest span was deleted")
			}
			// Every row a kept span refers to is there; at most one
			// transaction's worth (ForceFlush after each batch) more, and
			// those the writer marked ahead (a sixteenth of the spans in
			// the file, at least 64, or a transaction and a half: twice
			// that here), and the row of the highest id, which is never
			// taken (ids are not handed out again).
			for _, c := range []struct{ table, referenced, dangling, short string }{
				{"resources", "SELECT count(DISTINCT resource) FROM spans", "SELECT count(*) FROM spans WHERE resource NOT IN (SELECT id FROM resources)",
					"SELECT count(*) FROM spans JOIN resources AS r ON r.id = spans.resource WHERE r.last_span < spans.id"},
				{"scopes", "SELECT count(DISTINCT scope) FROM spans", "SELECT count(*) FROM spans WHERE scope NOT IN (SELECT id FROM scopes)",
					"SELECT count(*) FROM spans JOIN scopes AS s ON s.id = spans.scope WHERE s.last_span < spans.id"},
				{"attribute_keys", "SELECT count(DISTINCT CAST(a.key AS INTEGER)) FROM spans, json_each(spans.attributes) AS a",
					"SELECT count(*) FROM spans, json_each(spans.attributes) AS a WHERE CAST(a.key AS INTEGER) NOT IN (SELECT id FROM attribute_keys)",
					"SELECT count(*) FROM spans, json_each(spans.attributes) AS a JOIN attribute_keys AS k ON k.id = CAST(a.key AS INTEGER) WHERE k.last_span < spans.id"},
			} {
				// The rule retention relies on: no span beyond its rows' last_span.
				if n := queryInt(t, db, c.short); n != 0 {
					t.Errorf("%s: %d spans past the last_span of a row they refer to", c.table, n)
				}
				rows, referenced := queryInt(t, db, "SELECT count(*) FROM "+c.table), queryInt(t, db, c.referenced)
				if n := queryInt(t, db, c.dangling); n != 0 {
					t.Errorf("%s: %d references to rows that are gone", c.table, n)
				}
				t.Logf("%s: %d rows, %d referenced by the %d spans kept", c.table, rows, referenced, kept)
				if slack := int64(batch) + max(kept/8, 3*int64(batch), 128) + 1; rows > referenced+slack {
					t.Errorf("%s rows = %d; want at most the %d kept spans refer to, plus %d", c.table, rows, referenced, slack)
				}
			}
			checkRead(t, reader, unique, kept)
			checkRead(t, schema.NewReader(db), unique, kept)
			grew := int64(after.HeapInuse) - int64(before.HeapInuse)
			t.Logf("heap in use %.1f MiB before, %.1f MiB after", float64(before.HeapInuse)/(1<<20), float64(after.HeapInuse)/(1<<20))
			if grew > 64<<20 {
				t.Errorf("heap in use grew by %d MiB; want under 64", grew>>20)
			}
			if n := exporter.PublishedKeys(e); n > 1<<14 {
				t.Errorf("keys published to the encoders = %d; want at most %d", n, 1<<14)
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
			checkConsistent(t, path)
			if h.count("retention") != 0 {
				t.Errorf("retention errors reported: %v", h)
			}
		})
	}
}

// checkRead reads the newest n spans of the file through r and checks
// each against its sequence number: its attributes decode with the right
// keys, and its resource and scope are its own.
func checkRead(t *testing.T, r *schema.Reader, unique string, n int64) {
	t.Helper()
	ctx := context.Background()
	var spans []schema.Span
	for after := int64(0); ; {
		page, err := r.After(ctx, after, 10_000)
		if err != nil {
			t.Fatalf("read spans: %v", err)
		}
		if len(page) == 0 {
			break
		}
		spans = append(spans, page...)
		after = page[len(page)-1].ID
	}
	if int64(len(spans)) > n {
		spans = spans[int64(len(spans))-n:]
	}
	for _, s := range spans {
		want := map[string]string{"seq": s.Name}
		if unique == "keys" {
			want["key."+s.Name] = s.Name
		}
		got := map[string]string{}
		for _, kv := range s.Attributes {
			got[string(kv.Key)] = kv.Value.String()
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("span %s: attributes %v; want %v", s.Name, got, want)
		}
		var instance string
		for _, kv := range s.Resource.Attributes {
			if kv.Key == "service.instance.id" {
				instance = kv.Value.AsString()
			}
		}
		switch {
		case unique == "resources" && instance != s.Name, unique != "resources" && instance != "":
			t.Fatalf("span %s: service.instance.id %q", s.Name, instance)
		case unique == "scopes" && s.Scope.Name != "scope."+s.Name, unique != "scopes" && s.Scope.Name != "scope":
			t.Fatalf("span %s: scope %q", s.Name, s.Scope.Name)
		}
	}
}

// TestExporter_ResourcesBeyondCache sends spans of more distinct
// resources and scopes than the writer caches, twice over: the second
// round finds the rows of the first in the file, so each resource and
// scope is stored once, and each span refers to its own.
func TestExporter_ResourcesBeyondCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithMaxAge(0))
	ctx := context.Background()
	const distinct = 5000 // past maxCachedResources and maxCachedScopes (4,096)
	now := time.Now()
	for round := range 2 {
		recs := distinctRecords("resources", round*distinct, distinct, now)
		for i := range recs {
			// The resource and scope of span i of each round are the same.
			recs[i].Resource.Attributes[2] = attribute.String("service.instance.id", strconv.Itoa(i))
			recs[i].Scope.Name = "scope." + strconv.Itoa(i)
		}
		for i := 0; i < distinct; i += 500 {
			if err := e.ExportRecords(ctx, recs[i:i+500]); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db := mustOpenRead(t, path)
	for _, table := range []string{"resources", "scopes"} {
		if n := queryInt(t, db, "SELECT count(*) FROM "+table); n != distinct {
			t.Errorf("%s rows = %d; want %d", table, n, distinct)
		}
	}
	spans := readAll(t, path)
	if len(spans) != 2*distinct {
		t.Fatalf("spans = %d; want %d", len(spans), 2*distinct)
	}
	for _, s := range spans {
		seq, _ := strconv.Atoi(s.Name)
		want := strconv.Itoa(seq % distinct)
		var got string
		for _, kv := range s.Resource.Attributes {
			if kv.Key == "service.instance.id" {
				got = kv.Value.AsString()
			}
		}
		if got != want || s.Scope.Name != "scope."+want {
			t.Fatalf("span %s: resource %q, scope %q; want %q and scope.%s", s.Name, got, s.Scope.Name, want, want)
		}
	}
}
