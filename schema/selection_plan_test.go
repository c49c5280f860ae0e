package schema

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTraceSelection_Plan checks that a selection reads spans only
// through the batches of its window: a search of span id ranges, never a
// scan of the spans table, with or without filters.
func TestTraceSelection_Plan(t *testing.T) {
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
	for _, sel := range []TraceSelection{
		{Since: 1, Until: 2},
		{SinceBeginning: true, Until: 2},
		{Since: 1, Until: 2, Broadcaster: "b", Topic: "t", Glob: "g*"},
		{Since: 1, Until: 2, Glob: "g*"},
	} {
		q, args := sel.query()
		p := queryPlan(t, r, q, args...)
		t.Logf("%+v:\n%s", sel, p)
		if strings.Contains(p, "SCAN s") || !strings.Contains(p, "SEARCH s USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)") {
			t.Errorf("plan of %+v:\n%s\nwant spans searched by id range, never scanned", sel, p)
		}
	}
}
