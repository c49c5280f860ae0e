package schema

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTraceLookupsUseTheIndex checks that every way lonelytrace looks a
// trace up by its id alone is a search of the generation index, never a
// scan of the traces table: the sqlite_stat1 row of migration 2 makes
// the planner skip-scan the few generations.
func TestTraceLookupsUseTheIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := OpenWrite(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	r, err := OpenRead(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, q := range []string{
		"SELECT id FROM traces WHERE trace_id = ?",
		spanSelect + "WHERE t.trace_id = ? ORDER BY s.start_ns, s.id",
		"SELECT t.trace_id, s.span_id FROM traces AS t JOIN spans AS s ON s.trace = t.id WHERE t.trace_id IN (SELECT unhex(value) FROM json_each(?))",
	} {
		plan := queryPlan(t, r, q, []byte("0123456789abcdef"))
		if !strings.Contains(plan, "USING COVERING INDEX traces_by_gen (ANY(gen) AND trace_id=?)") &&
			!strings.Contains(plan, "USING INDEX traces_by_gen (ANY(gen) AND trace_id=?)") {
			t.Errorf("plan of %q:\n%s\nwant a skip-scan of traces_by_gen", q, plan)
		}
	}
}

// queryPlan returns SQLite's plan of q with args, a line per step.
func queryPlan(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, detail)
	}
	return b.String()
}

// TestMigration2 takes a file of version 1 with traces in it to version 2:
// every trace keeps its row id, gets the generation of its id, and the
// spans still join their traces through spans_view.
func TestMigration2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	setup := []string{
		"PRAGMA journal_mode = WAL",
		migrations[0],
		fmt.Sprintf("PRAGMA user_version = 1; PRAGMA application_id = %d", ApplicationID),
		"INSERT INTO resources (schema_url, attributes) VALUES ('', '{}')",
		"INSERT INTO scopes (name, version, schema_url, attributes) VALUES ('s', '', '', '{}')",
	}
	for _, q := range setup {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	ids := []int64{1, 2, 1<<TraceGenerationShift - 1, 1 << TraceGenerationShift, 3<<TraceGenerationShift + 5}
	for i, id := range ids {
		tid := fmt.Sprintf("%032x", id)
		if _, err := db.Exec("INSERT INTO traces (id, trace_id) VALUES (?, unhex(?))", id, tid); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO spans (trace, span_id, parent_remote, flags, name, kind, start_ns, end_ns,
			status_code, dropped_attributes, dropped_events, dropped_links, child_count, resource, scope)
			VALUES (?, unhex(?), 0, 1, 'n', 1, ?, ?, 0, 0, 0, 0, 0, 1, 1)`, id, fmt.Sprintf("%016x", i+1), i, i+1); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	w, err := OpenWrite(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var v int
	if err := w.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != Version {
		t.Fatalf("user_version = %d, %v; want %d", v, err, Version)
	}
	for _, id := range ids {
		var gen int64
		var tid string
		if err := w.QueryRow("SELECT gen, lower(hex(trace_id)) FROM traces WHERE id = ?", id).Scan(&gen, &tid); err != nil {
			t.Fatalf("trace %d: %v", id, err)
		}
		if gen != id>>TraceGenerationShift || tid != fmt.Sprintf("%032x", id) {
			t.Errorf("trace %d: gen %d, id %s; want gen %d, id %032x", id, gen, tid, id>>TraceGenerationShift, id)
		}
		var n int
		if err := w.QueryRow("SELECT count(*) FROM spans_view WHERE trace_id = ?", tid).Scan(&n); err != nil || n != 1 {
			t.Errorf("spans_view rows of trace %s = %d, %v; want 1", tid, n, err)
		}
	}
	if plan := queryPlan(t, w, "SELECT id FROM traces WHERE trace_id = ?", []byte("0123456789abcdef")); !strings.Contains(plan, "traces_by_gen (ANY(gen) AND trace_id=?)") {
		t.Errorf("after the migration, on its connection, the lookup's plan is\n%swant a skip-scan of traces_by_gen", plan)
	}
	if _, err := w.Exec("INSERT INTO traces (gen, trace_id) VALUES (0, unhex(?))", fmt.Sprintf("%032x", 1)); err == nil {
		t.Error("a second row for a trace id in the same generation was accepted")
	}
}
