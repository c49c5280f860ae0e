package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.db")
	os.WriteFile(in, []byte("in"), 0o644)
	link := filepath.Join(dir, "link.db")
	if err := os.Link(in, link); err != nil {
		t.Fatal(err)
	}
	sym := filepath.Join(dir, "sym.db")
	if err := os.Symlink(in, sym); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte("x"), 0o644)
	for _, c := range []struct {
		path  string
		force bool
		want  error
	}{
		{filepath.Join(dir, "new.json"), false, nil},
		{in, true, ErrIsInput},
		{link, true, ErrIsInput},
		{sym, true, ErrIsInput},
		{other, false, ErrExists},
		{other, true, nil},
	} {
		err := Check(c.path, c.force, filepath.Join(dir, "missing.db"), in)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("Check(%s, force %v) = %v; want %v", filepath.Base(c.path), c.force, err, c.want)
		}
	}
}

// TestFile_Commit: the target appears only at Commit, with the mode of
// the file it replaces; Abort leaves the directory as it was; a target
// that appears after Create is not replaced without force.
func TestFile_Commit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	f, err := Create(out, false)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("one")
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the target exists before Commit")
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // after Commit: nothing
	if b, _ := os.ReadFile(out); string(b) != "one" {
		t.Fatalf("target = %q; want one", b)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != DefaultMode {
		t.Errorf("mode = %v; want %v", fi.Mode().Perm(), DefaultMode)
	}

	os.Chmod(out, 0o600)
	f, err = Create(out, true)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after replace = %v; want the replaced file's 0600", fi.Mode().Perm())
	}

	f, err = Create(out, true)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("three")
	f.Abort()
	if b, _ := os.ReadFile(out); string(b) != "two" || !slices.Equal(names(t, dir), []string{"out.json"}) {
		t.Errorf("after Abort: %q, files %q; want two, [out.json]", b, names(t, dir))
	}

	late := filepath.Join(dir, "late.json")
	f, err = Create(late, false)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(late, []byte("theirs"), 0o644)
	if err := f.Commit(); !errors.Is(err, ErrExists) {
		t.Errorf("Commit onto a file that appeared = %v; want ErrExists", err)
	}
	if b, _ := os.ReadFile(late); string(b) != "theirs" || len(names(t, dir)) != 2 {
		t.Errorf("after the refused Commit: %q, files %q", b, names(t, dir))
	}
}
