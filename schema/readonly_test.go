package schema_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/tmpfs"
	"github.com/lonelytrace/lonelytrace/schema"
)

// crashedFile writes a trace file at path whose last metaRows meta rows
// are committed to its -wal only, and returns the open writer, as a
// writer that was killed would have left it; copy the files while it is
// open.
func crashedFile(t *testing.T, path string, metaRows int) {
	t.Helper()
	ctx := context.Background()
	db, err := schema.OpenWrite(ctx, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{"PRAGMA wal_autocheckpoint = 0", "PRAGMA wal_checkpoint(TRUNCATE)"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := range metaRows {
		if _, err := db.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES(?, 'x')", fmt.Sprintf("test.%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// metaRows counts the test's meta rows in the file at path through
// OpenRead and through Check, which must agree that path opens.
func metaRows(t *testing.T, path string) (int, error) {
	t.Helper()
	ctx := context.Background()
	if _, err := schema.Check(ctx, path, true); err != nil {
		return 0, err
	}
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM meta WHERE key LIKE 'test.%'").Scan(&n)
	return n, err
}

func TestOpenRead_ReadOnlyMount(t *testing.T) {
	const rows = 50
	cases := []struct {
		name  string
		files []string // what lies beside the file
		want  int      // rows read; -1: ErrWALUnreadable
	}{
		{"Closed", nil, 0},
		{"CrashedWithShm", []string{"-wal", "-shm"}, rows},
		{"CrashedWithoutShm", []string{"-wal"}, -1},
		{"ShmOnly", []string{"-shm"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "a.db")
			crashedFile(t, src, rows)
			dir := tmpfs.ReadOnly(t, func(dir string) {
				for _, suffix := range append([]string{""}, c.files...) {
					copyFile(t, src+suffix, filepath.Join(dir, "a.db"+suffix))
				}
			})
			n, err := metaRows(t, filepath.Join(dir, "a.db"))
			switch {
			case c.want < 0 && !errors.Is(err, schema.ErrWALUnreadable):
				t.Fatalf("err = %v; want ErrWALUnreadable", err)
			case c.want < 0 && !strings.Contains(err.Error(), "a.db-wal holds"):
				t.Errorf("err = %v; want it to name the -wal and its size", err)
			case c.want >= 0 && err != nil:
				t.Fatalf("read: %v", err)
			case n != max(c.want, 0):
				t.Errorf("rows = %d; want %d", n, c.want)
			}
		})
	}
}

// TestOpenRead_ReadOnlyFolder reads a file in a folder and a file that
// grant nobody write permission: no writer can exist, so the file opens
// as immutable and nothing is created beside it, for root (who could
// create a -shm there) and for other users (who could not).
func TestOpenRead_ReadOnlyFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "a.db")
	crashedFile(t, src, 3)
	path := filepath.Join(dir, "a.db")
	copyFile(t, src, path)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if n, err := metaRows(t, path); err != nil || n != 0 {
		t.Fatalf("rows = %d, %v; want 0, nil", n, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v; want only a.db", names)
	}
}
