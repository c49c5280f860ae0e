package opstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/lonelytrace/lonelytrace/schema"
)

// opRangeQuery selects the first and the last start among the spans of
// operation ?1 that start in [?2, ?3): one step each into spans_by_op.
const opRangeQuery = `SELECT
	(SELECT start_ns FROM spans WHERE op = ?1 AND start_ns >= ?2 AND start_ns < ?3 ORDER BY start_ns LIMIT 1),
	(SELECT start_ns FROM spans WHERE op = ?1 AND start_ns >= ?2 AND start_ns < ?3 ORDER BY start_ns DESC LIMIT 1)`

// OpRange returns the range of the starts of the operation spans of
// [since, until), in any file of w's plan and whatever the filters: from
// the first to just after the last; ok is false when there is none.
func (w *Window) OpRange(ctx context.Context, since, until int64) (lo, hi int64, ok bool, err error) {
	lo, hi = math.MaxInt64, math.MinInt64
	for i, f := range w.store.files {
		if w.Files[i].Summary.Oldest == nil {
			continue
		}
		for _, op := range schema.Operations {
			var first, last sql.NullInt64
			if err := f.db.QueryRowContext(ctx, opRangeQuery, op, since, until).Scan(&first, &last); err != nil {
				return 0, 0, false, fmt.Errorf("read the range of %s operations in %s: %w", op, f.path, err)
			}
			if first.Valid {
				lo, hi = min(lo, first.Int64), max(hi, last.Int64)
			}
		}
	}
	if lo > hi {
		return 0, 0, false, nil
	}
	return lo, hi + 1, true, nil // hi < until, so hi+1 fits
}
