package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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

// TestRunReplay_Resume: a replay that stops prints the command that
// continues it, with the flags given and -resume; run as printed, it
// sends the rest and nothing twice.
func TestRunReplay_Resume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	exp, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	for range 5 {
		_, span := tp.Tracer("test").Start(context.Background(), "notify")
		span.End()
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	calls := 0
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 3 {
			http.Error(w, "refused once", http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := req.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		got[s.SpanID().String()]++
	}))
	defer srv.Close()

	err = run([]string{"replay", "-endpoint", srv.URL, "-batch", "1", path}, io.Discard)
	// The flags in order of name, as flag.Visit gives them.
	want := "to continue where it stopped, run:\n  lonelytrace replay -batch 1 -endpoint " + srv.URL + " -resume 1:2 " + path
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "refused once") {
		t.Fatalf("error = %v; want the collector's answer and %q", err, want)
	}
	_, line, _ := strings.Cut(err.Error(), "run:\n  ")
	line, _, _ = strings.Cut(line, "\n")
	cmd := strings.Fields(line)
	var out strings.Builder
	if err := run(cmd[1:], &out); err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd, " "), err)
	}
	if !strings.Contains(out.String(), "sent 3 spans from 1 of 1 files") {
		t.Errorf("resumed replay says:\n%s\nwant 3 spans sent", out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 {
		t.Errorf("collector got %d spans; want 5", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("span %s arrived %d times; want once", id, n)
		}
	}

	t.Run("BadResume", func(t *testing.T) {
		for _, bad := range []string{"x", "2", "0:5", "1:-1", "3:0"} {
			err := run([]string{"replay", "-endpoint", srv.URL, "-resume", bad, path}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "resume") {
				t.Errorf("-resume %s: error = %v; want one about -resume", bad, err)
			}
		}
	})
}
