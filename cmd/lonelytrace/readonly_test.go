package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/tmpfs"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestRun_ReadOnlyMount runs the reading commands on a file on a
// read-only file system: each reads it as from a writable folder; with a
// -wal left by a crash and no -shm, each says the log cannot be read.
func TestRun_ReadOnlyMount(t *testing.T) {
	t.Run("Closed", func(t *testing.T) {
		path := filepath.Join(roMount(t, mustFile(t)), "t.db")
		var out bytes.Buffer
		if err := run([]string{"summary", "-since", "beginning", path}, &out); err != nil {
			t.Fatalf("summary: %v", err)
		}
		if !strings.Contains(out.String(), "There was 1 notification to 1 broadcaster") {
			t.Errorf("summary output:\n%s", out.String())
		}
		html := filepath.Join(t.TempDir(), "report.html")
		if err := run([]string{"snapshot", "-o", html, "-since", "beginning", path}, &bytes.Buffer{}); err != nil {
			t.Errorf("snapshot: %v", err)
		}
		out.Reset()
		if err := run([]string{"export", "-format", "otlp-jsonl", path}, &out); err != nil {
			t.Errorf("export: %v", err)
		}
		if !strings.Contains(out.String(), "notify \\u003corders\\u003e") && !strings.Contains(out.String(), "notify <orders>") {
			t.Errorf("export output lacks the span:\n%.500s", out.String())
		}
		if err := run([]string{"check", path}, &bytes.Buffer{}); err != nil {
			t.Errorf("check: %v", err)
		}
	})
	t.Run("CrashedWithoutShm", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "t.db")
		db, err := schema.OpenWrite(context.Background(), src, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{"PRAGMA wal_autocheckpoint = 0", "INSERT INTO meta(key, value) VALUES('test', 'x')"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		path := filepath.Join(roMount(t, src, src+"-wal"), "t.db")
		for _, args := range [][]string{{"summary", path}, {"export", path}, {"check", path}} {
			err := run(args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), "write-ahead log cannot be read") {
				t.Errorf("%s: %v; want that the write-ahead log cannot be read", args[0], err)
			}
		}
	})
}

// roMount copies files into a tmpfs remounted read-only and returns its
// path; it skips the test where it cannot mount.
func roMount(t *testing.T, files ...string) string {
	t.Helper()
	return tmpfs.ReadOnly(t, func(dir string) { tmpfs.Copy(t, dir, files...) })
}
