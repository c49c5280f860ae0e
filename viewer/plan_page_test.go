package viewer_test

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// TestPage_QueryPlans checks that the series' range walks the operation
// index one step each way and the totals read rows by id: neither scans
// every span.
func TestPage_QueryPlans(t *testing.T) {
	path := writeOps(t, t.TempDir(), "plan.db", genOps(4, 50))
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range viewer.PagePlanQueries() {
		plan := explainPlan(t, db, c.Name, c.Query, c.Args)
		all := strings.Join(plan, "\n")
		if !strings.Contains(all, c.Want) {
			t.Errorf("%s: plan\n%s\nwants %q", c.Name, all, c.Want)
		}
		for _, p := range plan {
			// The JSON list of ids and the one row of the subqueries may be
			// scanned; a table may not.
			if strings.HasPrefix(p, "SCAN") && !strings.Contains(p, "VIRTUAL TABLE") && p != "SCAN CONSTANT ROW" {
				t.Errorf("%s: scans: %s\n%s", c.Name, p, all)
			}
		}
	}
}

// explainPlan returns the detail lines of SQLite's plan for query with
// args, on db; name says which query failed.
func explainPlan(t *testing.T, db *sql.DB, name, query string, args []any) []string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return plan
}
