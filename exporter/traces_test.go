package exporter_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

// TestTraces_Generations checks the trace rows across a generation's
// start: new traces get the new generation, and a trace already written in
// the generation before keeps its one row when more of its spans come,
// even from a writer that has never seen it.
func TestTraces_Generations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	old := spans(3)
	exportAll(t, path, old)
	startGeneration1(t, path)

	fresh := spans(2)
	exportAll(t, path, append(append(fresh, old...), old...))
	r, err := schema.OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, s := range old {
		id := s.SpanContext().TraceID()
		if n := queryInt(t, r, "SELECT count(*) FROM traces WHERE trace_id = ?", id[:]); n != 1 {
			t.Errorf("trace %s has %d rows; want 1", id, n)
		}
		if g := queryInt(t, r, "SELECT gen FROM traces WHERE trace_id = ?", id[:]); g != 0 {
			t.Errorf("trace %s is in generation %d; want 0", id, g)
		}
		if n := queryInt(t, r, "SELECT count(*) FROM spans_view WHERE trace_id = lower(hex(?))", id[:]); n != 3 {
			t.Errorf("trace %s has %d spans; want 3", id, n)
		}
	}
	for _, s := range fresh {
		id := s.SpanContext().TraceID()
		if g := queryInt(t, r, "SELECT gen FROM traces WHERE trace_id = ?", id[:]); g != 1 {
			t.Errorf("new trace %s is in generation %d; want 1", id, g)
		}
	}
}

// TestTraces_WriterLooksUpByIndex checks the plans of the writer's lookups
// of trace ids on the writer's own connection, the one that created the
// file: a lookup by trace id alone must have loaded the statistics that
// make it a skip-scan, and the search of a generation must seek each id.
func TestTraces_WriterLooksUpByIndex(t *testing.T) {
	ctx := context.Background()
	e := mustNew(t, filepath.Join(t.TempDir(), "t.db"))
	id := make([]byte, 16)
	known := []any{int64(0)}
	for range strings.Count(exporter.TraceKnownSQL, "?") - 1 {
		known = append(known, id)
	}
	for _, c := range []struct {
		query string
		args  []any
		want  string
	}{
		{"SELECT id FROM traces WHERE trace_id = ?", []any{id}, "traces_by_gen (ANY(gen) AND trace_id=?)"},
		{exporter.TraceKnownSQL, known, "traces_by_gen (gen=? AND trace_id=?)"},
	} {
		var plan strings.Builder
		err := exporter.OnWriterConn(ctx, e, func(conn *sqlitec.Conn) error {
			return conn.Query("EXPLAIN QUERY PLAN "+c.query, c.args, func(s *sqlitec.Stmt) error {
				plan.WriteString(string(s.Bytes(3)) + "\n")
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan.String(), c.want) {
			t.Errorf("the plan of %s:\n%swant %s", c.query, plan.String(), c.want)
		}
	}
}

// TestTraces_KnownAfterRestart checks a new writer's spans of traces
// already in the file's generation, among new traces: the known traces
// keep their one row, the new ones get theirs, and every span is under its
// own trace.
func TestTraces_KnownAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	old := spans(10)
	exportAll(t, path, old)
	// Old traces among new ones, in one statement of 64 rows and in the
	// smaller ones after it.
	fresh := spans(60)
	batch := append(append(append([]sdktrace.ReadOnlySpan(nil), old[:5]...), fresh...), old[5:]...)
	exportAll(t, path, batch)
	checkUnderOwnTraces(t, path, old, fresh)
}

// checkUnderOwnTraces checks the file at path after a writer wrote the
// spans old and a second writer old again among fresh: one row for each
// trace, and every span under its own trace, those of old twice.
func checkUnderOwnTraces(t *testing.T, path string, old, fresh []sdktrace.ReadOnlySpan) {
	t.Helper()
	r := mustOpenRead(t, path)
	if got, want := queryInt(t, r, "SELECT count(*) FROM traces"), int64(len(old)+len(fresh)); got != want {
		t.Errorf("traces = %d; want %d", got, want)
	}
	for i, s := range append(old, fresh...) {
		id, sid := s.SpanContext().TraceID(), s.SpanContext().SpanID()
		want := int64(1)
		if i < len(old) {
			want = 2 // written by both writers
		}
		if got := queryInt(t, r, "SELECT count(*) FROM spans_view WHERE trace_id = lower(hex(?)) AND span_id = lower(hex(?))", id[:], sid[:]); got != want {
			t.Errorf("span %s of trace %s: %d rows under its trace; want %d", sid, id, got, want)
		}
	}
}

// exportAll writes spans to the file at path with an exporter of its own,
// shut down after.
func exportAll(t *testing.T, path string, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	ctx := context.Background()
	e := mustNew(t, path)
	if err := e.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTraces_KnownWhileTheCacheTurnsOver checks traces of the generation
// before that the writer finds just as its cache of traces turns over:
// those cached before the turn are still known, and no trace gets a
// second row.
func TestTraces_KnownWhileTheCacheTurnsOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	old := spans(64)
	exportAll(t, path, old)
	startGeneration1(t, path)

	// A new writer caches this many new traces, 10 short of a full cache,
	// then finds the 64 old ones in generation 0.
	ctx := context.Background()
	e := mustNew(t, path)
	fresh := spans(exporter.TraceCacheSize - 10)
	for at := 0; at < len(fresh); at += 8192 {
		if err := e.ExportSpans(ctx, fresh[at:min(at+8192, len(fresh))]); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ExportSpans(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r := mustOpenRead(t, path)
	if n := queryInt(t, r, "SELECT count(*) FROM traces WHERE gen = 1"); n != int64(len(fresh)) {
		t.Errorf("traces in generation 1 = %d; want %d, the new ones", n, len(fresh))
	}
	for _, s := range old {
		id := s.SpanContext().TraceID()
		if n := queryInt(t, r, "SELECT count(*) FROM traces WHERE trace_id = ?", id[:]); n != 1 {
			t.Errorf("trace %s has %d rows; want 1", id, n)
		}
	}
}

// startGeneration1 adds a trace row to the file at path with the last id
// of generation 0, so that the next new trace starts generation 1.
func startGeneration1(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("INSERT INTO traces (id, gen, trace_id) VALUES (?, 0, zeroblob(16))", 1<<schema.TraceGenerationShift-1); err != nil {
		t.Fatal(err)
	}
}

// TestTraces_EveryInsertSize writes jobs of as many new traces as each
// count, with traces of an earlier writer scattered among them, so that
// every size of the trace inserts (powers of two up to 64) meets rows it
// must add and rows already there: every span must be under its own
// trace, and every trace have one row.
func TestTraces_EveryInsertSize(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 31, 63, 64, 65, 100, 127, 129} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			old := spans(7)
			exportAll(t, path, old)
			fresh := spans(n)
			var batch []sdktrace.ReadOnlySpan
			k := 0
			for i, s := range fresh {
				for k < len(old) && k*n <= i*len(old) {
					batch = append(batch, old[k])
					k++
				}
				batch = append(batch, s)
			}
			batch = append(batch, old[k:]...)
			exportAll(t, path, batch)
			checkUnderOwnTraces(t, path, old, fresh)
			checkConsistent(t, path)
		})
	}
}
