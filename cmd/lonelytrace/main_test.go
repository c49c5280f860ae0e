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

func mustFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e))
	start := time.Now().Add(-time.Minute)
	_, s := tp.Tracer("test").Start(context.Background(), "notify <orders>", trace.WithTimestamp(start), schema.Notify("orders", 42, "b1"))
	s.End(trace.WithTimestamp(start.Add(3 * time.Millisecond)))
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRun_Commands(t *testing.T) {
	path := mustFile(t)
	t.Run("Summary", func(t *testing.T) {
		var out bytes.Buffer
		if err := run([]string{"summary", "-since", "beginning", path}, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "There was 1 notification to 1 broadcaster, taking 3.0 ms") {
			t.Errorf("summary output:\n%s", out.String())
		}
	})
	t.Run("SummaryBy", func(t *testing.T) {
		var out bytes.Buffer
		if err := run([]string{"summary", "-since", "beginning", "-by", "topic,broadcaster", path}, &out); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"and none of them failed.", "NOTIFY BY TOPIC", "\norders ", "NOTIFY BY BROADCASTER", "\nb1 "} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("summary -by lacks %q:\n%s", want, out.String())
			}
		}
		if err := run([]string{"summary", "-by", "nope", path}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "want one of broadcaster") {
			t.Errorf("-by nope: %v", err)
		}
	})
	t.Run("Snapshot", func(t *testing.T) {
		html := filepath.Join(t.TempDir(), "report.html")
		var out bytes.Buffer
		if err := run([]string{"snapshot", "-o", html, "-since", "beginning", path}, &out); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(html)
		if err != nil || !bytes.Contains(b, []byte("<b title=\"1\">1</b> notification</a>")) {
			t.Errorf("snapshot: %v\n%.500s", err, b)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, args := range [][]string{{"nope"}, {"summary"}, {"snapshot", path}, {"view", "-addr", "0.0.0.0:0", path}, {"summary", "-since", "later", path}} {
			if err := run(args, &bytes.Buffer{}); err == nil {
				t.Errorf("run %q succeeded; want an error", args)
			}
		}
	})
}
