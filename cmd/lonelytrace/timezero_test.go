package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestSnapshot_TimeZero checks that a file holding a span stored at time
// 0 (1970) beside recent ones gives a snapshot since the beginning, with
// trends, where it refused "a window of at most 1440 days for a series".
func TestSnapshot_TimeZero(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	e, err := exporter.New(path, exporter.WithMaxAge(0))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e))
	for _, at := range []time.Time{time.Unix(0, 0), time.Now().Add(-time.Minute)} {
		_, s := tp.Tracer("test").Start(context.Background(), "notify", trace.WithTimestamp(at), schema.Notify("orders", 42, "b1"))
		s.End(trace.WithTimestamp(at.Add(3 * time.Millisecond)))
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.html")
	if err := run([]string{"snapshot", "-since", "beginning", "-o", out, path}, &bytes.Buffer{}); err != nil {
		t.Fatalf("snapshot -since beginning: %v", err)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `id="trend-notify" open`) || !strings.Contains(string(page), "1970") {
		t.Error("the snapshot has no notify trend from 1970")
	}
	var text bytes.Buffer
	if err := run([]string{"summary", "-since", "beginning", path}, &text); err != nil || !strings.Contains(text.String(), "There were 2 notifications") {
		t.Errorf("summary -since beginning: %v\n%s", err, text.String())
	}
}
