// Package tmpfs mounts small tmpfs file systems for tests that need a real
// one: a disk that fills up, a file system that is read-only. Mounting
// needs root on Linux (CI runs as root); elsewhere the tests say why they
// could not and skip, or fall back to a simulation of their own.
package tmpfs

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new folder of tb.TempDir() and
// unmounts it when the test ends. Where it cannot mount it returns "" and
// the reason.
func Mount(tb testing.TB, size int64) (dir, why string) {
	tb.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return "", "mounting a file system needs root on Linux"
	}
	dir = filepath.Join(tb.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dk", max(size>>10, 1)), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return "", fmt.Sprintf("cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	// Registered after TempDir's removal, so it runs before it, and after
	// everything the test registers later (an exporter's Shutdown, say).
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir, ""
}

// ReadOnly mounts a 16 MiB tmpfs, lets fill write into it, remounts it
// read-only and returns its path. It skips the test where it cannot
// mount.
func ReadOnly(tb testing.TB, fill func(dir string)) string {
	tb.Helper()
	dir, why := Mount(tb, 16<<20)
	if dir == "" {
		tb.Skip(why)
	}
	fill(dir)
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		tb.Fatalf("remount %s read-only: %v: %s", dir, err, out)
	}
	return dir
}

// Copy copies each of files into dir under its base name.
func Copy(tb testing.TB, dir string, files ...string) {
	tb.Helper()
	for _, f := range files {
		in, err := os.Open(f)
		if err != nil {
			tb.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, filepath.Base(f)))
		if err != nil {
			in.Close()
			tb.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if e := out.Close(); e != nil && err == nil {
			err = e
		}
		if err != nil {
			tb.Fatalf("copy %s into %s: %v", f, dir, err)
		}
	}
}
