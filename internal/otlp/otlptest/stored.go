package otlptest

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lonelytrace/lonelytrace/schema"
)

// StoredSpanIDs counts the rows of each span id in the trace file at
// path, by its own SQL rather than through a reader under test: the
// tests of "acknowledged means stored" compare it with what was
// acknowledged, each span once.
func StoredSpanIDs(tb testing.TB, path string) map[pcommon.SpanID]int {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT span_id, count(*) FROM spans GROUP BY span_id")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := make(map[pcommon.SpanID]int)
	for rows.Next() {
		var id []byte
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			tb.Fatal(err)
		}
		out[pcommon.SpanID(id)] = n
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// StoredSpans returns how many span rows the trace file at path holds,
// by SQL on the file.
func StoredSpans(tb testing.TB, path string) int {
	tb.Helper()
	db, err := schema.OpenRead(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM spans").Scan(&n); err != nil {
		tb.Fatalf("count the spans of %s: %v", path, err)
	}
	return n
}
