package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMessages: what the commands say reads as a person wrote it: counts
// agree with their nouns, each problem is said once, by the command that
// met it.
func TestMessages(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.db")
	os.WriteFile(text, []byte("hello, not a database\n"), 0o644)
	t.Run("CopyOneArgument", func(t *testing.T) {
		err := run([]string{"copy", text}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "got 1 argument (") {
			t.Errorf("copy with one argument: %v; want \"got 1 argument\"", err)
		}
	})
	t.Run("CopyNamesCopy", func(t *testing.T) {
		err := run([]string{"copy", text, filepath.Join(dir, "out.db")}, &bytes.Buffer{})
		if err == nil || !strings.HasPrefix(err.Error(), "copy "+text+": not an SQLite database") || strings.Contains(err.Error(), "check") {
			t.Errorf("copy of a text file: %v; want it to name copy and the file, not check", err)
		}
	})
	t.Run("CheckSaysItOnce", func(t *testing.T) {
		nope := filepath.Join(dir, "nope.db")
		var out bytes.Buffer
		err := run([]string{"check", nope}, &out)
		if err == nil {
			t.Fatal("check of a missing file succeeded")
		}
		all := out.String() + err.Error()
		if n := strings.Count(all, "no such file"); n != 1 || strings.Count(err.Error(), nope) != 1 {
			t.Errorf("check of a missing file says its problem %d times; want once, naming the file once:\n%s\n%v", n, out.String(), err)
		}
		// Of several files, the report says each problem and the error
		// only which files.
		out.Reset()
		err = run([]string{"check", nope, text}, &out)
		if err == nil || strings.Count(out.String()+err.Error(), "no such file") != 1 || strings.Count(out.String()+err.Error(), "SQLite header") != 1 ||
			!strings.Contains(err.Error(), "check: 2 of 2 files failed: "+nope+", "+text) {
			t.Errorf("check of two bad files: report\n%s\nerror %v; want each problem once and the error naming both", out.String(), err)
		}
	})
	t.Run("SummaryOneBroadcaster", func(t *testing.T) {
		var out bytes.Buffer
		if err := run([]string{"summary", "-since", "beginning", mustFile(t)}, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "There was 1 notification to 1 broadcaster,") {
			t.Errorf("summary of one notify:\n%s", out.String())
		}
	})
	t.Run("TimeOutOfRange", func(t *testing.T) {
		err := run([]string{"summary", "-since", "1600-01-01T00:00:00Z", mustFile(t)}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "want a time from 1678 to 2261") {
			t.Errorf("summary -since 1600: %v; want it to say the range", err)
		}
	})
	t.Run("CollectClosingLine", func(t *testing.T) {
		c := startCollect(t)
		res, err := http.Post(c.httpBase+"/v1/traces", "application/json", strings.NewReader(`{"resourceSpans":[`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		out, err := c.stop()
		if err != nil {
			t.Fatal(err)
		}
		if want := "lonelytrace: collect stopped: 0 spans accepted, 0 rejected; 1 request refused, 0 told to retry\n"; !strings.HasSuffix(out, want) {
			t.Errorf("collect's closing line:\n%s\nwant it to end %q", out, want)
		}
	})
}
