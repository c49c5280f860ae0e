package exporter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
)

// keyed makes n spans named name, each with the attribute keys keys; the
// value of key k of span i is k followed by i.
func keyed(name string, n int, keys ...string) []sdktrace.ReadOnlySpan {
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem))
	for i := range n {
		var attrs []attribute.KeyValue
		for _, k := range keys {
			attrs = append(attrs, attribute.String(k, fmt.Sprint(k, i)))
		}
		_, s := tp.Tracer("gen").Start(context.Background(), name, trace.WithAttributes(attrs...))
		s.End()
	}
	return mem.GetSpans().Snapshots()
}

// checkKeys checks that every span named name in path has exactly the
// attributes keys, each with the value keyed gave it.
func checkKeys(t *testing.T, path, name string, n int, keys ...string) {
	t.Helper()
	db := mustOpenRead(t, path)
	rows, err := db.Query(`SELECT a.key, a.value, s.id - (SELECT min(id) FROM spans WHERE name = ?1)
		FROM span_attributes AS a JOIN spans AS s ON s.id = a.span WHERE s.name = ?1 ORDER BY s.id, a.key`, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var key, value string
		var i int
		if err := rows.Scan(&key, &value, &i); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s=%s", i, key, value))
	}
	var want []string
	for i := range n {
		for _, k := range keys {
			want = append(want, fmt.Sprintf("%d %s=%s%d", i, k, k, i))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("attributes of %q:\n got %v\nwant %v", name, got, want)
	}
}

// TestEncode_Ahead checks the rows ExportSpans encodes ahead, with the key
// ids the writer has published: a span with a key the writer has not
// published is encoded by the writer, and rows encoded with the ids of a
// file that has since been replaced are encoded again with the new file's.
func TestEncode_Ahead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithMaintainEvery(20*time.Millisecond))
	if exporter.Encoded(e) {
		t.Fatal("key ids published before any commit")
	}
	for _, b := range []struct {
		name string
		keys []string
	}{
		{"first", []string{"a", "b"}},  // the writer encodes: nothing is published
		{"second", []string{"a", "b"}}, // encoded ahead
		{"third", []string{"a", "c"}},  // c is new: the writer encodes
	} {
		if err := e.ExportSpans(ctx, keyed(b.name, 50, b.keys...)); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		if !exporter.Encoded(e) {
			t.Fatalf("no key ids published after %q", b.name)
		}
		checkKeys(t, path, b.name, 50, b.keys...)
	}

	// Encoded now, under the ids of this file (a, b, c as 1, 2, 3)...
	queue := exporter.EncodeNow(e, keyed("fourth", 50, "a", "c"))
	// ...and written after the file was replaced by one whose ids differ.
	other := filepath.Join(dir, "other.db")
	o := mustNew(t, other)
	if err := o.ExportSpans(ctx, keyed("other", 3, "c", "z", "a")); err != nil {
		t.Fatal(err)
	}
	if err := o.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e, "the switch", func() bool { return h.count("was replaced") == 1 })
	queue()
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, path, "other", 3, "a", "c", "z")
	checkKeys(t, path, "fourth", 50, "a", "c")
	if s := e.Stats(); s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("Stats = %+v; want nothing dropped or failed", s)
	}
}

// TestEncode_Reused has four producers queue batches encoded ahead, of 45
// spans each, so that every batch leaves rows bound but not yet written
// when the writer is done with it and gives its encoded rows back, to be
// reused by a producer while the transaction goes on: every span must
// keep its own attributes.
func TestEncode_Reused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path, exporter.WithCommitInterval(0))
	if err := e.ExportSpans(ctx, keyed("first", 10, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	const producers, batches = 4, 50
	made := make([][]sdktrace.ReadOnlySpan, producers*batches)
	for i := range made {
		made[i] = keyed(fmt.Sprint("batch-", i), 45, "a", "b")
	}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < len(made); i += producers {
				if err := e.ExportSpans(ctx, made[i]); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range made {
		checkKeys(t, path, fmt.Sprint("batch-", i), 45, "a", "b")
	}
}
