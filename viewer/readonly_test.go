package viewer_test

import (
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestSummary_ReadOnlyMount serves a file from a read-only file system,
// where SQLite can create no -shm: the summary and the trace list are the
// ones of the same file read from a writable folder.
func TestSummary_ReadOnlyMount(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("mounting a read-only file system needs root on Linux")
	}
	src := writeOps(t, t.TempDir(), "a.db", genOps(7, 400))
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
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
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
