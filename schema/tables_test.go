package schema

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustOpenWrite(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := OpenWrite(context.Background(), path, time.Second)
	if err != nil {
		tb.Fatalf("OpenWrite(%q): %v", path, err)
	}
	return db
}

// TestSpanColumns checks the one list of span columns against the table
// the migrations make.
func TestSpanColumns(t *testing.T) {
	db := mustOpenWrite(t, filepath.Join(t.TempDir(), "t.db"))
	defer db.Close()
	rows, err := db.Query("SELECT name FROM pragma_table_info(?) ORDER BY cid", SpansTable)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		got = append(got, name)
	}
	want := append([]string{"id"}, SpanColumns[:]...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("columns of %s = %v; want id then SpanColumns %v", SpansTable, got, want)
	}
	if ColStateful.String() != "stateful" || ColTrace.String() != "trace" {
		t.Errorf("ColStateful, ColTrace = %q, %q; want stateful, trace", ColStateful, ColTrace)
	}
}

// TestMigrationsFrozen guards the shipped migrations: a file migrated by
// one release must be what the next one expects, so their text may not
// change. A new schema is a new migration at the end.
func TestMigrationsFrozen(t *testing.T) {
	shipped := []string{
		"ab7cb2ca8cf00192a22d0692d5c3413f43e1d7e9af56c63e599f91b47db50583",
		"8e7c6e97554f2571041e86a941c453437fdb861c2583be033746df0b1d9a70cc",
	}
	if len(migrations) < len(shipped) {
		t.Fatalf("migrations = %d; want at least the %d shipped", len(migrations), len(shipped))
	}
	for i, want := range shipped {
		sum := sha256.Sum256([]byte(migrations[i]))
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("sha256 of migrations[%d] = %s; want %s (a shipped migration is never edited)", i, got, want)
		}
	}
	if Version != len(migrations) {
		t.Errorf("Version = %d; want len(migrations) = %d", Version, len(migrations))
	}
}

// TestViews checks the repeatable step: a writer's open gives every view
// its current definition, writes nothing when they have it, and a reader's
// open never writes.
func TestViews(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	schemaVersion := func(db *sql.DB) int {
		t.Helper()
		var v int
		if err := db.QueryRow("PRAGMA schema_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	checkCurrent := func(db *sql.DB) {
		t.Helper()
		for _, v := range views {
			var stored string
			if err := db.QueryRow("SELECT sql FROM sqlite_schema WHERE type = 'view' AND name = ?", v.name).Scan(&stored); err != nil {
				t.Fatalf("view %s: %v", v.name, err)
			}
			if stored != v.sql {
				t.Errorf("view %s is\n%s\nwant\n%s", v.name, stored, v.sql)
			}
		}
	}

	db := mustOpenWrite(t, path)
	checkCurrent(db)
	before := schemaVersion(db)
	db.Close()

	t.Run("Unchanged", func(t *testing.T) {
		db := mustOpenWrite(t, path)
		defer db.Close()
		if v := schemaVersion(db); v != before {
			t.Errorf("schema_version after a second open = %d; want %d (nothing to recreate)", v, before)
		}
	})

	// An older definition, as a file of another release would hold.
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("DROP VIEW " + SpansView + "; CREATE VIEW " + SpansView + " AS SELECT id FROM spans; DROP VIEW " + SpanAttributesView); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	t.Run("ReaderDoesNotWrite", func(t *testing.T) {
		r, err := OpenRead(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var stored string
		if err := r.QueryRow("SELECT sql FROM sqlite_schema WHERE name = ?", SpansView).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(stored, "SELECT id FROM spans") {
			t.Errorf("after OpenRead, %s is %q; want the old definition untouched", SpansView, stored)
		}
	})

	t.Run("Recreated", func(t *testing.T) {
		db := mustOpenWrite(t, path)
		defer db.Close()
		checkCurrent(db)
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + SpansView).Scan(&n); err != nil {
			t.Errorf("query %s: %v", SpansView, err)
		}
	})
}
