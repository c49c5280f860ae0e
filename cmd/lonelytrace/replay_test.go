package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
)

func TestRunReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	exp, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	for range 3 {
		_, span := tp.Tracer("test").Start(context.Background(), "notify")
		span.End()
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	var out strings.Builder
	if err := run([]string{"replay", "-endpoint", srv.URL, path}, &out); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	for _, want := range []string{"request failed", "attempt 2", "3 of 3 spans done", "sent 3 spans from 1 of 1 files", "1 retried"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	t.Run("NoEndpoint", func(t *testing.T) {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
		err := run([]string{"replay", path}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-endpoint") {
			t.Errorf("error = %v; want one asking for -endpoint", err)
		}
	})
}
