package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		elapsed     time.Duration
		note        string
		want        string
	}{
		{120000, 1012327, 2 * time.Second, "", "export: 120,000 of 1,012,327 traces (11 %), 60,000 traces/s, 15s left, 2s"},
		{5, 0, 3 * time.Second, "a.db", "export: 5 traces, 1 traces/s, 3s, a.db"},
		{0, 10, 2 * time.Second, "", "export: 0 of 10 traces (0 %), 2s"},
		{10, 10, 4 * time.Second, "", "export: 10 of 10 traces (100 %), 2 traces/s, 4s"},
	} {
		if got := Line("export", "traces", c.note, c.done, c.total, c.elapsed); got != c.want {
			t.Errorf("Line(%d, %d, %v) = %q; want %q", c.done, c.total, c.elapsed, got, c.want)
		}
	}
}

// TestStart_NotTerminal: output to a file (as to a pipe) shows nothing:
// Start returns nil, and a nil Meter takes every call.
func TestStart_NotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := Start(f, false, "copy", "pages")
	if m != nil {
		t.Fatal("Start on a regular file returned a Meter")
	}
	m.SetTotal(10)
	m.Add(3)
	m.Note("x")
	m.Clear()
	m.Stop()
	if m.Done() != 0 {
		t.Errorf("nil Meter Done = %d", m.Done())
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("wrote %d bytes to a file that is not a terminal", fi.Size())
	}
}

// TestMeter_Line: the line is written in place (a carriage return
// before it, the rest of the terminal line cleared after), and Stop
// takes it off, once, however often it is called.
func TestMeter_Line(t *testing.T) {
	var buf bytes.Buffer
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &Meter{w: &buf, what: "import", unit: "bytes", start: start, stop: make(chan struct{})}
	m.SetTotal(100)
	m.Add(40)
	m.Add(2)
	m.Note("7 spans stored")
	if m.Done() != 42 {
		t.Errorf("Done = %d; want 42", m.Done())
	}
	m.show(start.Add(3 * time.Second))
	want := "\rimport: 42 of 100 bytes (42 %), 14 bytes/s, 4s left, 3s, 7 spans stored\x1b[K"
	if buf.String() != want {
		t.Errorf("line = %q; want %q", buf.String(), want)
	}
	buf.Reset()
	m.Stop()
	m.Stop()
	if buf.String() != "\r\x1b[K" {
		t.Errorf("Stop wrote %q; want the line cleared once", buf.String())
	}
}
