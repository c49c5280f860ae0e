package exporter_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/exporter"
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
	e := mustNew(t, path)
	if err := e.ExportSpans(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The next new trace starts generation 1.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO traces (id, gen, trace_id) VALUES (?, 0, zeroblob(16))", 1<<schema.TraceGenerationShift-1); err != nil {
		t.Fatal(err)
	}
	db.Close()

	fresh := spans(2)
	e = mustNew(t, path)
	if err := e.ExportSpans(ctx, append(append(fresh, old...), old...)); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
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

// TestTraces_WriterLooksUpByIndex checks the plan of the writer's lookup of
// a trace id on the writer's own connection, the one that created the
// file: it must have loaded the statistics that make it a skip-scan.
func TestTraces_WriterLooksUpByIndex(t *testing.T) {
	ctx := context.Background()
	e := mustNew(t, filepath.Join(t.TempDir(), "t.db"))
	var plan strings.Builder
	err := exporter.OnWriterConn(ctx, e, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT id FROM traces WHERE trace_id = ?", make([]byte, 16))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				return err
			}
			plan.WriteString(detail + "\n")
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "traces_by_gen (ANY(gen) AND trace_id=?)") {
		t.Errorf("the writer's trace lookup plan:\n%swant a skip-scan of traces_by_gen", plan.String())
	}
}
