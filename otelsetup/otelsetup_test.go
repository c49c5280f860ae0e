package otelsetup_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
)

// receiver is an OTLP/HTTP trace receiver: it decodes each request's
// protobuf and keeps the spans' names and ids.
type receiver struct {
	mu    sync.Mutex
	names map[string]string // span id hex -> name
	svc   map[string]bool
}

func newReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	r := &receiver{names: map[string]string{}, svc: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+req.URL.Path, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var msg collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					r.svc[kv.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.names[trace.SpanID(s.SpanId).String()] = s.Name
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *receiver) spans() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, v := range r.names {
		out[k] = v
	}
	return out
}

// makeSpans records a small trace through the global provider and returns
// span id -> name.
func makeSpans(t *testing.T) map[string]string {
	t.Helper()
	tr := otel.Tracer("otelsetup-test")
	ctx, root := tr.Start(context.Background(), "notify", trace.WithAttributes(schema.Operation(schema.OpNotify)))
	_, child := tr.Start(ctx, "hash")
	child.End()
	root.End()
	return map[string]string{
		root.SpanContext().SpanID().String():  "notify",
		child.SpanContext().SpanID().String(): "hash",
	}
}

func fileSpans(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT span_id, name FROM spans_view")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		rows.Scan(&id, &name)
		out[id] = name
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustStart(t *testing.T, opts ...otelsetup.Option) func(context.Context) error {
	t.Helper()
	shutdown, err := otelsetup.Start(context.Background(), opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return shutdown
}

func TestStart_Exporters(t *testing.T) {
	for _, tc := range []struct {
		env              string // OTEL_TRACES_EXPORTER
		wantFile, wantRx bool
	}{
		{env: "", wantFile: true},
		{env: "sqlite", wantFile: true},
		{env: "otlp", wantRx: true},
		{env: "sqlite,otlp", wantFile: true, wantRx: true},
		{env: " OTLP , sqlite,sqlite ", wantFile: true, wantRx: true},
		{env: "none"},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			rx, url := newReceiver(t)
			t.Setenv("OTEL_TRACES_EXPORTER", tc.env)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
			path := filepath.Join(t.TempDir(), "t.db")
			shutdown := mustStart(t, otelsetup.WithServiceName("svc-under-test"), otelsetup.WithDBPath(path))
			want := makeSpans(t)
			if err := shutdown(context.Background()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("second shutdown: %v", err)
			}
			_, statErr := os.Stat(path)
			if !tc.wantFile {
				if statErr == nil {
					t.Errorf("%s exists; want no file", path)
				}
			} else if got := fileSpans(t, path); !equalMaps(got, want) {
				t.Errorf("file spans = %v; want %v", got, want)
			}
			got := rx.spans()
			if tc.wantRx {
				if !equalMaps(got, want) {
					t.Errorf("receiver spans = %v; want %v", got, want)
				}
				if !rx.svc["svc-under-test"] {
					t.Errorf("receiver services = %v; want svc-under-test", rx.svc)
				}
			} else if len(got) != 0 {
				t.Errorf("receiver got %v; want nothing", got)
			}
		})
	}
}

func TestStart_Console(t *testing.T) {
	// stdouttrace keeps the os.Stdout it saw at start-up, so the console
	// run happens in a child process whose output we read.
	if os.Getenv("OTELSETUP_CONSOLE_CHILD") == "1" {
		shutdown, err := otelsetup.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for id, name := range makeSpans(t) {
			fmt.Fprintf(os.Stderr, "%s %s\n", id, name)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStart_Console$")
	cmd.Env = append(os.Environ(), "OTELSETUP_CONSOLE_CHILD=1", "OTEL_TRACES_EXPORTER=console")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		id, name, _ := strings.Cut(line, " ")
		if !strings.Contains(stdout.String(), `"SpanID":"`+id+`"`) || !strings.Contains(stdout.String(), `"Name":"`+name+`"`) {
			t.Errorf("console output lacks span %s %q:\n%s", id, name, stdout.String())
		}
		n++
	}
	if n != 2 {
		t.Errorf("child reported %d spans; want 2: %s", n, stderr.String())
	}
}

func TestStart_Errors(t *testing.T) {
	for _, tc := range []struct{ exporters, protocol, want string }{
		{"sqlite,zipkin", "", "in a list only"},
		{"otlp", "http/json", "not supported"},
		{"nosuch", "", "nosuch"},
	} {
		t.Run(tc.exporters, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", tc.exporters)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol)
			path := filepath.Join(t.TempDir(), "t.db")
			shutdown, err := otelsetup.Start(context.Background(), otelsetup.WithDBPath(path))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start = %v; want an error containing %q", err, tc.want)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown after a failed Start = %v", err)
			}
		})
	}
	t.Run("BadFile", func(t *testing.T) {
		t.Setenv("OTEL_TRACES_EXPORTER", "")
		path := filepath.Join(t.TempDir(), "garbage.db")
		os.WriteFile(path, []byte("garbage, not a database, at all, ever........................................................................................."), 0o644)
		if _, err := otelsetup.Start(context.Background(), otelsetup.WithDBPath(path)); err == nil || !strings.Contains(err.Error(), "not an SQLite database") {
			t.Errorf("Start on a garbage file = %v; want 'not an SQLite database'", err)
		}
	})
}

func TestStart_Disabled(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	before := otel.GetTracerProvider()
	path := filepath.Join(t.TempDir(), "t.db")
	shutdown := mustStart(t, otelsetup.WithDBPath(path))
	if otel.GetTracerProvider() != before {
		t.Error("the global provider changed; want nothing installed")
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a trace file was created")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestStart_EnvironmentAndRestart(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	dir := t.TempDir()
	t.Setenv("LONELYTRACE_DB", filepath.Join(dir, "from-env.db"))
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,team=pubsub")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	shutdown := mustStart(t, otelsetup.WithServiceName("first"))
	makeSpans(t)
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fileSpans(t, filepath.Join(dir, "from-env.db")); len(got) != 0 {
		t.Errorf("always_off sampler stored %d spans; want 0", len(got))
	}

	// Started again in the same process, sampling everything.
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	t.Setenv("OTEL_PROPAGATORS", "tracecontext")
	shutdown = mustStart(t, otelsetup.WithServiceName("second"))
	want := makeSpans(t)
	fields := otel.GetTextMapPropagator().Fields()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fileSpans(t, filepath.Join(dir, "from-env.db")); !equalMaps(got, want) {
		t.Errorf("spans = %v; want %v", got, want)
	}
	sort.Strings(fields)
	if strings.Join(fields, ",") != "traceparent,tracestate" {
		t.Errorf("propagator fields = %v; want traceparent, tracestate only", fields)
	}
	db, _ := schema.OpenRead(context.Background(), filepath.Join(dir, "from-env.db"))
	defer db.Close()
	var svc, env, team string
	db.QueryRow(`SELECT service_name, json_extract(resource, '$."deployment.environment.name"'), json_extract(resource, '$.team') FROM spans_view LIMIT 1`).Scan(&svc, &env, &team)
	if svc != "second" || env != "test" || team != "pubsub" {
		t.Errorf("resource service, environment, team = %q, %q, %q; want second, test, pubsub", svc, env, team)
	}

	t.Run("DefaultPropagators", func(t *testing.T) {
		t.Setenv("OTEL_PROPAGATORS", "")
		shutdown := mustStart(t)
		defer shutdown(context.Background())
		carrier := propagation.MapCarrier{}
		ctx, span := otel.Tracer("p").Start(context.Background(), "x")
		defer span.End()
		otel.GetTextMapPropagator().Inject(ctx, carrier)
		if carrier.Get("traceparent") == "" {
			t.Errorf("no traceparent injected: %v", carrier)
		}
		if f := otel.GetTextMapPropagator().Fields(); !contains(f, "baggage") {
			t.Errorf("propagator fields = %v; want baggage among them", f)
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestRegisterAutoexport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auto.db")
	t.Setenv("LONELYTRACE_DB", path)
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	// Start records its configuration for the factory; a later Start's
	// path must win over the first one's.
	shutdown := mustStart(t, otelsetup.WithDBPath(filepath.Join(t.TempDir(), "first.db")))
	shutdown(context.Background())
	shutdown = mustStart(t, otelsetup.WithDBPath(path))
	shutdown(context.Background())
	otelsetup.RegisterAutoexport() // again: must not panic

	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	e, err := autoexport.NewSpanExporter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	le, ok := e.(*exporter.Exporter)
	if !ok {
		t.Fatalf("autoexport gave %T; want *exporter.Exporter", e)
	}
	if le.Path() != path {
		t.Errorf("autoexport exporter writes %s; want %s", le.Path(), path)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e))
	_, s := tp.Tracer("auto").Start(context.Background(), "via-autoexport")
	s.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := fileSpans(t, path)
	if got[s.SpanContext().SpanID().String()] != "via-autoexport" {
		t.Errorf("file spans = %v; want the autoexport span", got)
	}
}
