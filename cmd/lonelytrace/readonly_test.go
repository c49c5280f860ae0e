package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/schema"
)

// roMount mounts a tmpfs, copies each of files into it under its base
// name, remounts it read-only and returns its path; it skips the test
// where it cannot mount (not root, not Linux).
func roMount(t *testing.T, files ...string) string {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("mounting a read-only file system needs root on Linux")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	for _, f := range files {
		in, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if e := out.Close(); e != nil && err == nil {
			err = e
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	return dir
}

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
