package schema_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/lonelytrace/lonelytrace/schema"
)

// TestIDList checks the list against SQLite's own reading of it: the ids
// json_each gives back are those given, in order, for no id, one, and
// more than a statement's parameters could hold.
func TestIDList(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "ids.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ids := range [][]int64{nil, {7}, {-1, 0, 1 << 62}, make([]int64, 40000)} {
		if len(ids) == 40000 {
			for i := range ids {
				ids[i] = int64(i * 3)
			}
		}
		rows, err := db.QueryContext(context.Background(), "SELECT value FROM json_each(?1)", schema.IDList(ids))
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		rows.Close()
		if len(got) != len(ids) {
			t.Fatalf("%d ids: json_each gave %d", len(ids), len(got))
		}
		for i := range ids {
			if got[i] != ids[i] {
				t.Fatalf("id %d: got %d, want %d", i, got[i], ids[i])
			}
		}
	}
}
