package schema_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/schema"
)

// copySource writes n spans, one trace each, through the real exporter.
func copySource(t *testing.T, n int) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "src.db")
	e, err := exporter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	var stubs tracetest.SpanStubs
	for i := range n {
		stubs = append(stubs, tracetest.SpanStub{
			Name: "x",
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{1, byte(i + 1)}, SpanID: trace.SpanID{2, byte(i + 1)}, TraceFlags: trace.FlagsSampled,
			}),
		})
	}
	if err := e.ExportSpans(ctx, stubs.Snapshots()); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCopy checks what Copy writes, a whole file or a selection, and that
// a copy that fails, wherever it fails, leaves nothing beside its
// destination.
func TestCopy(t *testing.T) {
	src := copySource(t, 5)
	foreign := filepath.Join(t.TempDir(), "foreign.db")
	fdb, err := sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fdb.Exec("CREATE TABLE recipes (name TEXT)"); err != nil {
		t.Fatal(err)
	}
	fdb.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, kind := range []struct {
		name string
		sel  *schema.TraceSelection
	}{{"Whole", nil}, {"Selection", &schema.TraceSelection{SinceBeginning: true, Until: math.MaxInt64}}} {
		t.Run(kind.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "copy.db")
			st, err := schema.Copy(context.Background(), src, dst, kind.sel)
			if err != nil {
				t.Fatal(err)
			}
			if st.Spans != 5 || st.Traces != 5 {
				t.Errorf("copied %d spans, %d traces; want 5, 5", st.Spans, st.Traces)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "copy.db" {
				t.Errorf("the copy's folder holds %d files; want copy.db alone", len(ents))
			}
			for _, f := range []struct {
				name string
				ctx  context.Context
				src  string
				is   error
			}{
				{"Foreign", context.Background(), foreign, schema.ErrNotTraceFile},
				{"Canceled", canceled, src, context.Canceled},
			} {
				dir := t.TempDir()
				_, err := schema.Copy(f.ctx, f.src, filepath.Join(dir, "copy.db"), kind.sel)
				if !errors.Is(err, f.is) {
					t.Errorf("%s: Copy = %v; want %v", f.name, err, f.is)
				}
				if ents, _ := os.ReadDir(dir); len(ents) > 0 {
					t.Errorf("%s: a failed copy left %d files, the first %s", f.name, len(ents), ents[0].Name())
				}
			}
		})
	}
}
