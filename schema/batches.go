package schema

import (
	"context"
	"database/sql"
	"fmt"
)

// The batches rule: how the batches table maps a window of time to ranges
// of span ids, in place of an index on start_ns that every span would pay
// for (schema/README.md, "batches").
//
// Each write transaction adds one batches row: the span ids it filled,
// first_span to last_span inclusive and without gaps, how many of them
// there are, the earliest and latest start among them, and when it
// committed. Then:
//
//  1. No later transaction adds spans to a range already in the table.
//  2. Retention only deletes spans, and in the same transaction rewrites
//     spans, min_start_ns and max_start_ns of their row to what is left,
//     or deletes the row when nothing is.
//  3. Spans reach the file in roughly the order they start, so the
//     batches whose [min_start_ns, max_start_ns] meets a window are few;
//     they hold every span that starts in it (and some around it).
//
// So a reader that has read the spans of a batch can keep them for as
// long as the batch's row reads the same, every column included: a row
// changed by retention has lost spans, and a row deleted by retention
// can come back with the same id (INTEGER PRIMARY KEY hands out max+1),
// which its written_ns tells apart.

// Batch is one row of the batches table.
type Batch struct {
	ID int64
	// FirstSpan and LastSpan are the spans.id range the transaction added.
	FirstSpan, LastSpan int64
	// Spans is how many spans of the range are left.
	Spans int64
	// MinStartNs and MaxStartNs bound the starts of the spans left.
	MinStartNs, MaxStartNs int64
	// WrittenNs is when the transaction committed, Unix ns.
	WrittenNs int64
}

// Within reports whether every span of b starts in [since, until), Unix
// ns: its Spans count them, no span row needs reading.
func (b Batch) Within(since, until int64) bool {
	return b.MinStartNs >= since && b.MaxStartNs < until
}

// batchColumns are the columns of Batch, in the order Scan takes them.
const batchColumns = "id, first_span, last_span, spans, min_start_ns, max_start_ns, written_ns"

// Scan reads b from a row of batchColumns, as the Batch* queries select.
func (b *Batch) Scan(row interface{ Scan(...any) error }) error {
	return row.Scan(&b.ID, &b.FirstSpan, &b.LastSpan, &b.Spans, &b.MinStartNs, &b.MaxStartNs, &b.WrittenNs)
}

// The queries of the batches rule. ?1 and ?2 are since and until, Unix ns.
const (
	// BatchesInWindowQuery selects, as Batch.Scan reads them and in id
	// order, the batches that may hold spans starting in [?1, ?2): every
	// span that does is in one of them.
	BatchesInWindowQuery = "SELECT " + batchColumns + " FROM batches WHERE max_start_ns >= ?1 AND min_start_ns < ?2 AND spans > 0 ORDER BY id"
	// BatchesPageQuery selects, as Batch.Scan reads them and in id
	// order, up to ?4 batches of ids above ?3 that may hold spans
	// starting in [?1, ?2): BatchesInWindowQuery a page at a time, each
	// page a short read (a file written at a low rate has a batch for
	// every few spans, too many to list in one go).
	BatchesPageQuery = "SELECT " + batchColumns + " FROM batches WHERE id > ?3 AND max_start_ns >= ?1 AND min_start_ns < ?2 AND spans > 0 ORDER BY id LIMIT ?4"
	// FirstBatchQuery selects the smallest id of the batches that may
	// hold spans starting in [?1, ?2), 0 when there is none: where the
	// pages of BatchesPageQuery start, found through the index on
	// max_start_ns.
	FirstBatchQuery = "SELECT coalesce(min(id), 0) FROM batches WHERE max_start_ns >= ?1 AND min_start_ns < ?2 AND spans > 0"
	// BatchByIDQuery selects the batch of id ?1 as Batch.Scan reads it;
	// no row when retention has deleted it.
	BatchByIDQuery = "SELECT " + batchColumns + " FROM batches WHERE id = ?1"
	// BatchTotalsQuery selects the spans of the file, and the earliest
	// and latest start among them (NULL when there is none), without a
	// scan of the spans table.
	BatchTotalsQuery = "SELECT coalesce(sum(spans), 0), min(min_start_ns), max(max_start_ns) FROM batches"
	// CountInWindowQuery counts the spans that start in [?1, ?2): the
	// batches wholly inside count from their spans column, and only the
	// span rows of the batches that straddle an edge are read.
	CountInWindowQuery = `
SELECT
	(SELECT coalesce(sum(spans), 0) FROM batches
		WHERE max_start_ns >= ?1 AND min_start_ns >= ?1 AND max_start_ns < ?2)
	+ (SELECT count(*) FROM batches AS b JOIN spans AS s ON s.id BETWEEN b.first_span AND b.last_span
		WHERE b.max_start_ns >= ?1 AND b.min_start_ns < ?2 AND NOT (b.min_start_ns >= ?1 AND b.max_start_ns < ?2)
		AND s.start_ns >= ?1 AND s.start_ns < ?2)`
)

// BatchesInWindow returns the batches that may hold spans starting in
// [since, until), Unix ns, in id order (BatchesInWindowQuery).
func BatchesInWindow(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, since, until int64) ([]Batch, error) {
	rows, err := db.QueryContext(ctx, BatchesInWindowQuery, since, until)
	if err != nil {
		return nil, fmt.Errorf("read batches: %w", err)
	}
	defer rows.Close()
	var out []Batch
	for rows.Next() {
		var b Batch
		if err := b.Scan(rows); err != nil {
			return nil, fmt.Errorf("read batches: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read batches: %w", err)
	}
	return out, nil
}
