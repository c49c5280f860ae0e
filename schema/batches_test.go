package schema_test

import (
	"context"
	"database/sql"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// batchFile writes a file of plain inserts, as the writer would: n write
// transactions of up to 20 spans each, starting roughly in order (each a
// few ms late or early), with one batches row each. It returns the file
// opened for writing.
func batchFile(t *testing.T, n int) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := schema.OpenWrite(ctx, filepath.Join(t.TempDir(), "b.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	id := int64(0)
	clock := int64(1_000_000_000)
	for b := range n {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, lo, hi := id+1, int64(math.MaxInt64), int64(math.MinInt64)
		for range 1 + rng.IntN(20) {
			id++
			clock += 1_000_000
			start := clock + rng.Int64N(10_000_000) - 5_000_000
			lo, hi = min(lo, start), max(hi, start)
			if _, err := tx.ExecContext(ctx, `INSERT INTO spans (id, trace, span_id, parent_remote, flags, name, kind, start_ns, end_ns, status_code,
				dropped_attributes, dropped_events, dropped_links, child_count, resource, scope)
				VALUES (?, 1, x'0102030405060708', 0, 1, 'work', 1, ?, ?, 0, 0, 0, 0, 0, 1, 1)`, id, start, start+1000); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO batches (first_span, last_span, spans, min_start_ns, max_start_ns, written_ns) VALUES (?, ?, ?, ?, ?, ?)",
			first, id, id-first+1, lo, hi, int64(b)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// retain deletes the spans that start before cutoff the way retention
// does: the batches rows are rewritten to what is left, or deleted.
func retain(t *testing.T, db *sql.DB, cutoff int64) {
	t.Helper()
	if _, err := db.Exec("DELETE FROM spans WHERE start_ns < ?", cutoff); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE batches SET
		spans = (SELECT count(*) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span),
		min_start_ns = coalesce((SELECT min(start_ns) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span), min_start_ns),
		max_start_ns = coalesce((SELECT max(start_ns) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span), max_start_ns)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM batches WHERE spans = 0"); err != nil {
		t.Fatal(err)
	}
}

// TestBatchesRule checks the queries of the batches rule against plain
// reads of the spans table, before and after retention.
func TestBatchesRule(t *testing.T) {
	ctx := context.Background()
	db := batchFile(t, 300)
	check := func(t *testing.T) {
		var n, lo, hi int64
		if err := db.QueryRow("SELECT count(*), min(start_ns), max(start_ns) FROM spans").Scan(&n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		var tn int64
		var tlo, thi sql.NullInt64
		if err := db.QueryRow(schema.BatchTotalsQuery).Scan(&tn, &tlo, &thi); err != nil {
			t.Fatal(err)
		}
		if tn != n || tlo.Int64 != lo || thi.Int64 != hi {
			t.Errorf("totals = %d, %d, %d; want %d, %d, %d", tn, tlo.Int64, thi.Int64, n, lo, hi)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for range 200 {
			since := lo - 20_000_000 + rng.Int64N(hi-lo+40_000_000)
			until := since + rng.Int64N(200_000_000)
			if rng.IntN(10) == 0 {
				since = math.MinInt64
			}
			batches, err := schema.BatchesInWindow(ctx, db, since, until)
			if err != nil {
				t.Fatal(err)
			}
			// Every span that starts in the window is in a batch listed,
			// and the batches within it hold only such spans.
			inWindow := map[int64]bool{}
			rows, err := db.Query("SELECT id FROM spans WHERE start_ns >= ? AND start_ns < ?", since, until)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				inWindow[id] = true
			}
			rows.Close()
			covered, within := 0, int64(0)
			for i, b := range batches {
				if i > 0 && b.ID <= batches[i-1].ID {
					t.Fatalf("batches not in id order: %d after %d", b.ID, batches[i-1].ID)
				}
				for id := b.FirstSpan; id <= b.LastSpan; id++ {
					if inWindow[id] {
						covered++
					}
				}
				if b.Within(since, until) {
					var n int64
					if err := db.QueryRow("SELECT count(*) FROM spans WHERE id BETWEEN ? AND ? AND start_ns >= ? AND start_ns < ?", b.FirstSpan, b.LastSpan, since, until).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n != b.Spans {
						t.Fatalf("batch %d is within [%d, %d) but %d of its %d spans are", b.ID, since, until, n, b.Spans)
					}
					within += n
				}
			}
			if covered != len(inWindow) {
				t.Fatalf("window [%d, %d): batches listed hold %d of its %d spans", since, until, covered, len(inWindow))
			}
			var count int64
			if err := db.QueryRow(schema.CountInWindowQuery, since, until).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != int64(len(inWindow)) {
				t.Fatalf("window [%d, %d): count = %d; want %d", since, until, count, len(inWindow))
			}
		}
	}
	t.Run("Written", check)
	var before schema.Batch
	if err := before.Scan(db.QueryRow(schema.BatchByIDQuery, 2)); err != nil {
		t.Fatal(err)
	}
	var lo int64
	if err := db.QueryRow("SELECT min(start_ns) FROM spans").Scan(&lo); err != nil {
		t.Fatal(err)
	}
	retain(t, db, lo+30_000_000)
	t.Run("AfterRetention", check)
	t.Run("RowsChange", func(t *testing.T) {
		var after schema.Batch
		err := after.Scan(db.QueryRow(schema.BatchByIDQuery, 2))
		if err == nil && after == before {
			t.Errorf("batch 2 = %+v after retention deleted its oldest spans; want it changed or gone", after)
		}
		if err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
	})
}
