package schema

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMigration3 takes a file of version 2 with spans in it to version 3:
// the resources, scopes and attribute keys already there count as used
// by every span in the file (their last_span is its highest span id), so
// that retention takes none of them before those spans go; a row a
// writer adds without a last_span is never taken.
func TestMigration3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	setup := []string{
		"PRAGMA journal_mode = WAL",
		migrations[0],
		migrations[1],
		fmt.Sprintf("PRAGMA user_version = 2; PRAGMA application_id = %d", ApplicationID),
		"INSERT INTO resources (schema_url, attributes) VALUES ('', '{}'), ('', '{\"a\":1}')",
		"INSERT INTO scopes (name, version, schema_url, attributes) VALUES ('s', '', '', '{}')",
		"INSERT INTO attribute_keys (key) VALUES ('k'), ('unused')",
		"INSERT INTO traces (id, gen, trace_id) VALUES (1, 0, unhex('0000000000000000000000000000000a'))",
	}
	for _, q := range setup {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO spans (id, trace, span_id, parent_remote, flags, name, kind, start_ns, end_ns,
			status_code, attributes, dropped_attributes, dropped_events, dropped_links, child_count, resource, scope)
			VALUES (?, 1, unhex(?), 0, 1, 'n', 1, ?, ?, 0, '{"1":"v"}', 0, 0, 0, 0, 1, 1)`, 10+i, fmt.Sprintf("%016x", i+1), i, i+1); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	w, err := OpenWrite(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, table := range []string{"resources", "scopes", "attribute_keys"} {
		var n, lo, hi int64
		if err := w.QueryRow("SELECT count(*), min(last_span), max(last_span) FROM "+table).Scan(&n, &lo, &hi); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n == 0 || lo != 12 || hi != 12 {
			t.Errorf("%s: %d rows with last_span %d to %d; want every row at 12, the highest span id", table, n, lo, hi)
		}
	}
	if _, err := w.Exec("INSERT INTO attribute_keys (key) VALUES ('new')"); err != nil {
		t.Fatal(err)
	}
	var last int64
	if err := w.QueryRow("SELECT last_span FROM attribute_keys WHERE key = 'new'").Scan(&last); err != nil || last != math.MaxInt64 {
		t.Errorf("last_span of a key added without one = %d, %v; want %d", last, err, int64(math.MaxInt64))
	}
	rows, err := w.Query("EXPLAIN QUERY PLAN SELECT id FROM resources WHERE last_span < 5")
	if err != nil {
		t.Fatal(err)
	}
	var plan string
	for rows.Next() {
		var id, parent, unused int64
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "; "
	}
	rows.Close()
	if want := "resources_by_last_span"; !strings.Contains(plan, want) {
		t.Errorf("plan of the reclaim = %q; want it to use %s", plan, want)
	}
}
