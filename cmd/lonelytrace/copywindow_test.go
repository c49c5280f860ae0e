package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/exporter"
)

// TestCopy_Window copies windows and filters of a file written in many
// transactions and checks each copy against independent readings of the
// source: the same traces, byte for byte (export of the copy against the
// source's export with the same flags), the batches rows brought to the
// spans copied, attribute keys and meta as they are, and SQLite's
// integrity check.
func TestCopy_Window(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	e, err := exporter.New(src)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for seq := range 600 {
		if err := e.ExportSpans(context.Background(), writerTrace(seq, now)); err != nil {
			t.Fatal(err)
		}
		if seq%50 == 49 {
			if err := e.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Trace seq starts at now - 1 min + seq µs.
	at := func(seq int) string {
		return now.Add(-time.Minute + time.Duration(seq)*time.Microsecond).Format(time.RFC3339Nano)
	}
	for i, flags := range [][]string{
		{"-since", at(540)},
		{"-since", at(100), "-until", at(130)},
		{"-since", at(300), "-topic", "a"},
		{"-since", at(10000)}, // nothing
	} {
		t.Run(fmt.Sprint(flags), func(t *testing.T) {
			dst := filepath.Join(dir, fmt.Sprintf("w%d.db", i))
			if err := run(append(append([]string{"copy"}, flags...), src, dst), io.Discard); err != nil {
				t.Fatal(err)
			}
			var want, got bytes.Buffer
			if err := run(append(append([]string{"export", "-format", "otlp-jsonl"}, flags...), src), &want); err != nil {
				t.Fatal(err)
			}
			if err := run([]string{"export", "-format", "otlp-jsonl", dst}, &got); err != nil {
				t.Fatal(err)
			}
			if (want.Len() == 0) != (i == 3) {
				t.Fatalf("the source's export of the window holds %d bytes", want.Len())
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("the copy exports %d bytes, differing from the source's window (%d bytes)", got.Len(), want.Len())
			}
			db := openRO(t, dst)
			var ok string
			if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
				t.Errorf("integrity_check = %q, %v", ok, err)
			}
			var bad int
			if err := db.QueryRow(`SELECT count(*) FROM batches AS b WHERE spans != (SELECT count(*) FROM spans WHERE id BETWEEN b.first_span AND b.last_span)
				OR min_start_ns != (SELECT min(start_ns) FROM spans WHERE id BETWEEN b.first_span AND b.last_span)
				OR max_start_ns != (SELECT max(start_ns) FROM spans WHERE id BETWEEN b.first_span AND b.last_span)`).Scan(&bad); err != nil || bad != 0 {
				t.Errorf("%d batches rows disagree with their spans (%v)", bad, err)
			}
			var orphans int
			if err := db.QueryRow(`SELECT count(*) FROM spans WHERE id NOT IN (SELECT s.id FROM spans s JOIN batches b ON s.id BETWEEN b.first_span AND b.last_span)
				OR resource NOT IN (SELECT id FROM resources) OR scope NOT IN (SELECT id FROM scopes) OR trace NOT IN (SELECT id FROM traces)`).Scan(&orphans); err != nil || orphans != 0 {
				t.Errorf("%d spans outside every batch or without their rows (%v)", orphans, err)
			}
			for _, q := range []string{"SELECT count(*), total(length(key)) FROM attribute_keys", "SELECT count(*), total(length(key) + length(value)) FROM meta"} {
				var n1, n2 int64
				var s1, s2 float64
				if err := openRO(t, src).QueryRow(q).Scan(&n1, &s1); err != nil {
					t.Fatal(err)
				}
				if err := db.QueryRow(q).Scan(&n2, &s2); err != nil {
					t.Fatal(err)
				}
				if n1 != n2 || s1 != s2 || n1 == 0 {
					t.Errorf("%s: copy %d, %v; source %d, %v", q, n2, s2, n1, s1)
				}
			}
		})
	}
}
