package viewer

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The reads of one file: its totals, its retention, and the operation
// spans of its batches. Each runs in its own short read transaction.

// countSpans counts the spans of f whose start is in [since, until), by
// the batches rule (schema.CountInWindowQuery); fs holds f's totals.
func (f *file) countSpans(ctx context.Context, since, until int64, fs FileSummary) (int64, error) {
	if fs.Oldest == nil {
		return 0, nil
	}
	if fs.Oldest.UnixNano() >= since && fs.Newest.UnixNano() < until {
		return fs.Spans, nil
	}
	var n int64
	err := f.db.QueryRowContext(ctx, schema.CountInWindowQuery, since, until).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count spans of %s: %w", f.path, err)
	}
	return n, nil
}

// describe reads f's totals: span count, drop counters and the oldest and
// newest starts.
func (f *file) describe(ctx context.Context) (FileSummary, error) {
	fs := FileSummary{Path: f.path}
	var oldest, newest sql.NullInt64
	// The batches table keeps, per write transaction, how many spans it
	// added and the range of their starts, so the totals need no scan.
	err := f.db.QueryRowContext(ctx, schema.BatchTotalsQuery).Scan(&fs.Spans, &oldest, &newest)
	if err != nil {
		return fs, fmt.Errorf("describe %s: %w", f.path, err)
	}
	if oldest.Valid {
		o, n := time.Unix(0, oldest.Int64), time.Unix(0, newest.Int64)
		fs.Oldest, fs.Newest = &o, &n
	}
	if fs.Retention, fs.Bytes, err = f.retention(ctx); err != nil {
		return fs, err
	}
	rows, err := f.db.QueryContext(ctx, "SELECT key, value FROM meta WHERE key IN (?, ?)", schema.MetaDroppedSpans, schema.MetaFailedSpans)
	if err != nil {
		return fs, fmt.Errorf("read meta of %s: %w", f.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var value any
		if err := rows.Scan(&key, &value); err != nil {
			return fs, fmt.Errorf("read meta of %s: %w", f.path, err)
		}
		n, _ := value.(int64) // meta is ANY; anything but an integer is no count
		switch key {
		case schema.MetaDroppedSpans:
			fs.Dropped = n
		case schema.MetaFailedSpans:
			fs.Failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return fs, fmt.Errorf("read meta of %s: %w", f.path, err)
	}
	return fs, nil
}

// retention reads the retention f's exporter recorded (nil when it
// recorded none: a file of an older exporter) and the bytes the file's
// pages take.
func (f *file) retention(ctx context.Context) (*Retention, int64, error) {
	var r Retention
	var found int
	var bytes int64
	err := f.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM meta WHERE key IN (?1, ?2)),
		coalesce((SELECT value FROM meta WHERE key = ?1 AND typeof(value) = 'integer'), 0),
		coalesce((SELECT value FROM meta WHERE key = ?2 AND typeof(value) = 'integer'), 0),
		coalesce((SELECT value FROM meta WHERE key = ?3 AND typeof(value) = 'integer'), 0),
		(SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size)`,
		schema.MetaRetentionMaxAge, schema.MetaRetentionMaxSize, schema.MetaRetentionDeleted,
	).Scan(&found, &r.MaxAgeNs, &r.MaxBytes, &r.DeletedSpans, &bytes)
	if err != nil {
		return nil, 0, fmt.Errorf("read retention of %s: %w", f.path, err)
	}
	if found == 0 {
		return nil, bytes, nil
	}
	return &r, bytes, nil
}

// opColumns selects what an opSpan holds of an operation span, in as few
// columns as can carry it: the driver takes the connection's lock twice
// for each column of each row, which was a third of a large window's
// read. The third column packs the operation's index in
// schema.Operations (opUnknown for any other) and, in bit 8, whether the
// span is stateful. Its parameters ?3 onwards are the operations' names.
var opColumns = func() string {
	var b strings.Builder
	b.WriteString("start_ns, end_ns, (CASE op")
	for i := range schema.Operations {
		fmt.Fprintf(&b, " WHEN ?%d THEN %d", i+3, i)
	}
	fmt.Fprintf(&b, " ELSE %d END) | ((coalesce(stateful, 0) != 0) << 8), body_size, subscribers, broadcaster, topic, glob", opUnknown)
	return b.String()
}()

// opUnknown is the packed index of an operation this viewer does not know.
const opUnknown = 255

// readBatches reads the operation spans of batches in one read
// transaction, each with its batches row as that transaction sees it (a
// batch that retention changed since it was listed is read as it is now;
// one it deleted is left out). The string columns are numbered in a
// table of the read's own.
func (f *file) readBatches(ctx context.Context, batches []schema.Batch, withKeys bool) (*readBatches, error) {
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer conn.Close()
	if err := mapFile(ctx, conn, true); err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer mapFile(context.WithoutCancel(ctx), conn, false)
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer tx.Rollback()
	batchStmt, err := tx.PrepareContext(ctx, schema.BatchByIDQuery)
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer batchStmt.Close()
	cols := opColumns
	if withKeys {
		cols += ", (SELECT trace_id FROM traces WHERE traces.id = spans.trace), span_id"
	}
	// The scan by rowid reads every span of the batch, operation or not,
	// but in page order: through the operation index it would be one
	// lookup in the table per operation, which costs about as much at
	// the share of operations in a pub/sub application's spans.
	rowStmt, err := tx.PrepareContext(ctx, "SELECT "+cols+" FROM spans WHERE id BETWEEN ?1 AND ?2 AND op IS NOT NULL")
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer rowStmt.Close()
	args := make([]any, 2, 2+len(schema.Operations))
	for _, op := range schema.Operations {
		args = append(args, op)
	}
	out := &readBatches{}
	local := newStrTable()
	for _, listed := range batches {
		var now schema.Batch
		err := now.Scan(batchStmt.QueryRowContext(ctx, listed.ID))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read batch %d of %s: %w", listed.ID, f.path, err)
		}
		args[0], args[1] = now.FirstSpan, now.LastSpan
		b, err := f.readBatch(ctx, rowStmt, args, now, withKeys, local)
		if err != nil {
			return nil, err
		}
		out.batches = append(out.batches, b)
	}
	out.local = local.strs
	return out, nil
}

// readBatch reads the operation spans of batch with rowStmt and args.
func (f *file) readBatch(ctx context.Context, rowStmt *sql.Stmt, args []any, batch schema.Batch, withKeys bool, local *strTable) (*batchOps, error) {
	rows, err := rowStmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("read batch %d of %s: %w", batch.ID, f.path, err)
	}
	defer rows.Close()
	b := &batchOps{batch: batch}
	var vals [10]any
	dests := make([]any, 0, len(vals))
	n := 8
	if withKeys {
		n += 2
	}
	for i := range n {
		dests = append(dests, &vals[i])
	}
	bad := func(col string, v any) error {
		return fmt.Errorf("read batch %d of %s: a span's %s is %T, not what the schema says", batch.ID, f.path, col, v)
	}
	for rows.Next() {
		if err := rows.Scan(dests...); err != nil {
			return nil, fmt.Errorf("read batch %d of %s: %w", batch.ID, f.path, err)
		}
		var o opSpan
		var ok bool
		if o.start, ok = vals[0].(int64); !ok {
			return nil, bad("start_ns", vals[0])
		}
		if o.end, ok = vals[1].(int64); !ok {
			return nil, bad("end_ns", vals[1])
		}
		packed, ok := vals[2].(int64)
		if !ok {
			return nil, bad("op", vals[2])
		}
		if packed&0xff == opUnknown {
			continue // not one of the operations this viewer knows
		}
		o.op, o.stateful = uint8(packed&0xff), packed&(1<<8) != 0
		if o.size, ok = intOrNull(vals[3]); !ok {
			return nil, bad("body_size", vals[3])
		}
		if o.subs, ok = intOrNull(vals[4]); !ok {
			return nil, bad("subscribers", vals[4])
		}
		if o.broadcaster, ok = textID(vals[5], local); !ok {
			return nil, bad("broadcaster", vals[5])
		}
		if o.topic, ok = textID(vals[6], local); !ok {
			return nil, bad("topic", vals[6])
		}
		if o.glob, ok = textID(vals[7], local); !ok {
			return nil, bad("glob", vals[7])
		}
		if withKeys {
			traceID, _ := vals[8].([]byte)
			spanID, _ := vals[9].([]byte)
			b.keys = append(b.keys, makeSpanKey(traceID, spanID))
		}
		b.ops = append(b.ops, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read batch %d of %s: %w", batch.ID, f.path, err)
	}
	return b, nil
}

// intOrNull returns v as an int64, -1 when NULL; ok is false for any
// other type.
func intOrNull(v any) (n int64, ok bool) {
	switch x := v.(type) {
	case nil:
		return -1, true
	case int64:
		return x, true
	}
	return 0, false
}

// textID numbers v, text or NULL, in t.
func textID(v any, t *strTable) (uint32, bool) {
	switch x := v.(type) {
	case nil:
		return 0, true
	case string:
		return t.id(x), true
	}
	return 0, false
}

// spanKey identifies a span across files: trace id then span id.
type spanKey [24]byte

func makeSpanKey(traceID, spanID []byte) (k spanKey) {
	copy(k[:16], traceID)
	copy(k[16:], spanID)
	return k
}

// rowKey identifies a span within one file: its trace's row id in place
// of the trace id.
func rowKey(trace int64, spanID []byte) (k spanKey) {
	binary.BigEndian.PutUint64(k[:8], uint64(trace))
	copy(k[16:], spanID)
	return k
}
