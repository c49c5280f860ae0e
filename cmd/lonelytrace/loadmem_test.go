package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

func TestLoad_MemProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.pprof")
	var out bytes.Buffer
	if err := run([]string{"load", "-rate", "5000", "-duration", "2500ms", "-out", t.TempDir(), "-memprofile", path}, &out); err != nil {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	// A heap profile is gzip-compressed protocol buffers.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Errorf("%s does not start like a gzip file: % x", path, data[:min(len(data), 4)])
	}
	// The parts add up to the resident set the report starts from, and
	// the Go runtime's share is its own reading, not the RSS.
	mibs := regexp.MustCompile(`highest RSS sample \(lonelytrace, ([0-9.]+) MiB[^\n]*\n\s+Go runtime, mapped less released\s+([0-9.]+) MiB(?s:.*)the rest \(binary, SQLite's memory\)\s+([0-9.]+) MiB`).FindStringSubmatch(out.String())
	if mibs == nil {
		t.Fatalf("no memory report in:\n%s", out.String())
	}
	rss, _ := strconv.ParseFloat(mibs[1], 64)
	goMapped, _ := strconv.ParseFloat(mibs[2], 64)
	rest, _ := strconv.ParseFloat(mibs[3], 64)
	if goMapped <= 0 || rest <= 0 {
		t.Errorf("Go runtime %.1f MiB, rest %.1f MiB; want both above 0", goMapped, rest)
	}
	if d := goMapped + rest - rss; d < -0.11 || d > 0.11 {
		t.Errorf("Go runtime %.1f + rest %.1f MiB = %.1f; want the RSS, %.1f", goMapped, rest, goMapped+rest, rss)
	}
}
