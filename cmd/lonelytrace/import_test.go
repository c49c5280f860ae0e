package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	os.WriteFile(in, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a","startTimeUnixNano":"1740830400000000000"}]}]}]}`), 0o644)
	db := filepath.Join(dir, "t.db")
	var out bytes.Buffer
	for range 2 {
		if err := run([]string{"import", "-db", db, in}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out.String(), "imported 1 spans") || !strings.Contains(out.String(), "imported 0 spans into "+db+"; 1 duplicates skipped") {
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
