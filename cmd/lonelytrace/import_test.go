package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/schema"
)

func TestImport_BadLine(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "spans.jsonl")
	good := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a"}]}]}]}`
	os.WriteFile(in, []byte(good+"\n"+good+"\n{\"resourceSpans\":\n"), 0o644)
	var out bytes.Buffer
	err := importFiles(context.Background(), filepath.Join(dir, "t.db"), []string{in}, &out, nil)
	if err == nil || !strings.Contains(err.Error(), "spans.jsonl:3:") {
		t.Fatalf("err = %v; want one naming spans.jsonl:3", err)
	}
}

func TestImportExport(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "spans.json")
	os.WriteFile(in, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a","startTimeUnixNano":"1740830400000000000","endTimeUnixNano":"1740830400001000000"}]}]}]}`), 0o644)
	db := filepath.Join(dir, "t.db")
	var out bytes.Buffer
	for range 2 {
		if err := run([]string{"import", "-db", db, in}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out.String(), "imported 1 span into") || !strings.Contains(out.String(), "imported 0 spans into "+db+"; 1 duplicate skipped") {
		t.Fatalf("output = %q; want 1 span stored, then 1 duplicate", out.String())
	}
	out.Reset()
	if err := run([]string{"export", "-format", "otlp-jsonl", db}, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.Contains(out.String(), `"spanId":"eee19b7ec3c1b174"`) {
		t.Fatalf("export = %q; want one line with the span", out.String())
	}
}

// TestImport_BadTimes: import rejects, counts and explains the spans that
// collect would reject: no start time, or an end before the start.
func TestImport_BadTimes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "spans.jsonl")
	span := func(id, times string) string {
		return `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"` + id + `","name":"a"` + times + `}]}]}]}` + "\n"
	}
	os.WriteFile(in, []byte(span("eee19b7ec3c1b171", `,"startTimeUnixNano":"1740830400000000000","endTimeUnixNano":"1740830400001000000"`)+
		span("eee19b7ec3c1b172", `,"endTimeUnixNano":"1740830400001000000"`)+
		span("eee19b7ec3c1b173", `,"startTimeUnixNano":"1740830400000000000","endTimeUnixNano":"1740830399000000000"`)), 0o644)
	db := filepath.Join(dir, "t.db")
	var out bytes.Buffer
	if err := importFiles(context.Background(), db, []string{in}, &out, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"; 0 duplicates skipped, 2 rejected\n", "rejected: " + in + ":2: 1 span rejected; the first: resourceSpans[0].scopeSpans[0].spans[0]: start time is 0 (unset)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output = %q; want it to contain %q", out.String(), want)
		}
	}
	rdb, err := schema.OpenRead(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var n int
	if err := rdb.QueryRow("SELECT count(*) FROM " + schema.SpansTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("file holds %d spans; want 1", n)
	}
}
