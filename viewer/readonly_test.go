package viewer_test

import (
	"net/url"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/tmpfs"
)

// TestSummary_ReadOnlyMount serves a file from a read-only file system,
// where SQLite can create no -shm: the summary and the trace list are the
// ones of the same file read from a writable folder.
func TestSummary_ReadOnlyMount(t *testing.T) {
	src := writeOps(t, t.TempDir(), "a.db", genOps(7, 400))
	dir := tmpfs.ReadOnly(t, func(dir string) { tmpfs.Copy(t, dir, src) })
	params := url.Values{"since": {"beginning"}}
	want := summary(t, server(t, mustOpen(t, testNow, src)), params)
	base := server(t, mustOpen(t, testNow, filepath.Join(dir, "a.db")))
	got := summary(t, base, params)
	got.Files, want.Files = nil, nil // their paths differ
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary from the read-only mount:\n%s\nwant\n%s", jsonOf(got), jsonOf(want))
	}
	if n := want.Operations["notify"].Count; n == 0 {
		t.Fatalf("notify count = 0; want the generated operations")
	}
	if code, body := get(t, base, "/api/traces", params); code != 200 {
		t.Errorf("trace list: status %d: %s", code, body)
	}
}
