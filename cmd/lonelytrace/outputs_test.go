package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dirNames returns the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// TestOutputs_Refused runs each command that writes a file against the
// outputs it must refuse, and checks that each failure changed nothing:
// the files that were there are byte for byte the same, and no file was
// added to the directory.
func TestOutputs_Refused(t *testing.T) {
	src := mustFile(t)
	srcBytes, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args func(dir, db, keep, alias string) []string
		want string
	}{
		{"ExportOntoInput", func(dir, db, keep, alias string) []string { return []string{"export", "-o", db, db} }, "is also an input"},
		{"ExportOntoInputByLink", func(dir, db, keep, alias string) []string { return []string{"export", "-f", "-o", alias, db} }, "is also an input"},
		{"ExportMissingInput", func(dir, db, keep, alias string) []string {
			return []string{"export", "-f", "-o", keep, filepath.Join(dir, "nope.db")}
		}, "nope.db"},
		{"ExportExisting", func(dir, db, keep, alias string) []string { return []string{"export", "-o", keep, db} }, "give -f"},
		{"SnapshotOntoInput", func(dir, db, keep, alias string) []string { return []string{"snapshot", "-f", "-o", db, db} }, "is also an input"},
		{"SnapshotExisting", func(dir, db, keep, alias string) []string { return []string{"snapshot", "-o", keep, db} }, "give -f"},
		{"CopyOntoInputByLink", func(dir, db, keep, alias string) []string { return []string{"copy", "-f", db, alias} }, "is also an input"},
		{"CopyExisting", func(dir, db, keep, alias string) []string { return []string{"copy", db, keep} }, "give -f"},
		{"ImportIntoInput", func(dir, db, keep, alias string) []string { return []string{"import", "-db", keep, keep} }, "is also an input"},
		{"ImportMissingInput", func(dir, db, keep, alias string) []string {
			return []string{"import", "-db", filepath.Join(dir, "new.db"), filepath.Join(dir, "nope.json")}
		}, "nope.json"},
		{"ImportTraceFileAsInput", func(dir, db, keep, alias string) []string {
			return []string{"import", "-db", filepath.Join(dir, "new.db"), db}
		}, "unknown format"},
		{"ImportBadJSON", func(dir, db, keep, alias string) []string {
			bad := filepath.Join(dir, "bad.json")
			os.WriteFile(bad, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a"}]}]}, {`), 0o644)
			return []string{"import", "-db", filepath.Join(dir, "new.db"), bad}
		}, "bad.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "t.db")
			if err := os.WriteFile(db, srcBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			alias := filepath.Join(dir, "alias.db")
			if err := os.Link(db, alias); err != nil {
				t.Fatal(err)
			}
			keep := filepath.Join(dir, "keep.json")
			if err := os.WriteFile(keep, []byte("precious\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := c.args(dir, db, keep, alias)
			before := dirNames(t, dir)
			err := run(args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run %q = %v; want an error saying %q", args, err, c.want)
			}
			if got := dirNames(t, dir); !slices.Equal(got, before) {
				t.Errorf("files after the failure = %q; want %q", got, before)
			}
			if b, _ := os.ReadFile(db); !bytes.Equal(b, srcBytes) {
				t.Errorf("%s changed: %d bytes; want %d", db, len(b), len(srcBytes))
			}
			if b, _ := os.ReadFile(keep); string(b) != "precious\n" {
				t.Errorf("%s = %q; want it untouched", keep, b)
			}
		})
	}
}

// TestOutputs_Written checks the outputs that succeed: -f replaces, a
// new file gets its name only at the end, and copy's output takes the
// source's mode.
func TestOutputs_Written(t *testing.T) {
	src := mustFile(t)
	if err := os.Chmod(src, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Run("ExportForce", func(t *testing.T) {
		out := filepath.Join(dir, "e.json")
		os.WriteFile(out, []byte("old"), 0o600)
		if err := run([]string{"export", "-f", "-o", out, src}, io.Discard); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil || !bytes.Contains(b, []byte(`"resourceSpans"`)) {
			t.Errorf("%s = %.100q, %v; want the export", out, b, err)
		}
		if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode = %v; want the replaced file's 0600", fi.Mode().Perm())
		}
	})
	t.Run("CopyMode", func(t *testing.T) {
		for _, args := range [][]string{{"copy", src, filepath.Join(dir, "c.db")}, {"copy", "-f", src, filepath.Join(dir, "c.db")}} {
			if err := run(args, io.Discard); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(args[len(args)-1])
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("%q: mode = %v; want the source's 0644", args, fi.Mode().Perm())
			}
		}
	})
	t.Run("ImportNew", func(t *testing.T) {
		in := filepath.Join(dir, "e.json")
		db := filepath.Join(dir, "i.db")
		if err := run([]string{"import", "-db", db, in}, io.Discard); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run([]string{"export", "-format", "otlp-jsonl", db}, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `"notify \u003corders\u003e"`) && !strings.Contains(out.String(), `notify <orders>`) {
			t.Errorf("export of the imported file = %.300s; want the span", out.String())
		}
		for _, name := range dirNames(t, dir) {
			if strings.HasPrefix(name, ".") {
				t.Errorf("left behind: %s", name)
			}
		}
	})
}

// TestCollect_PortTaken checks that collect, whose port is in use, leaves
// no trace file.
func TestCollect_PortTaken(t *testing.T) {
	t.Setenv(envViewerToken, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	err = serveCollect(context.Background(), []string{"-db", db, "-otlp-grpc", "", "-otlp-http", ln.Addr().String()}, io.Discard)
	if err == nil {
		t.Fatal("collect on a taken port succeeded")
	}
	if names := dirNames(t, dir); len(names) > 0 {
		t.Errorf("collect that could not listen left %q", names)
	}
}
