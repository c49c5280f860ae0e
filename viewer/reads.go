package viewer

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

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

// readBatches reads the operation spans of batches in one read
// transaction, each with its batches row as that transaction sees it (a
// batch that retention changed since it was listed is read as it is now;
// one it deleted is left out). The string columns are numbered in a
// table of the read's own.
func (f *file) readBatches(ctx context.Context, batches []schema.Batch, topics, withKeys bool) (*readBatches, error) {
	tx, err := f.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer tx.Rollback()
	batchStmt, err := tx.PrepareContext(ctx, schema.BatchByIDQuery)
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer batchStmt.Close()
	serviceStmt, err := tx.PrepareContext(ctx, serviceQuery)
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer serviceStmt.Close()
	cols := "op, start_ns, end_ns, body_size, subscribers, stateful, broadcaster, status_code, resource"
	if topics {
		cols += ", topic, glob"
	}
	if withKeys {
		cols += ", (SELECT trace_id FROM traces WHERE traces.id = spans.trace), span_id"
	}
	// The scan by rowid reads every span of the batch, operation or not,
	// but in page order: through the operation index it would be one
	// lookup in the table per operation, which costs about as much at
	// the share of operations in a pub/sub application's spans.
	rowStmt, err := tx.PrepareContext(ctx, "SELECT "+cols+" FROM spans WHERE id BETWEEN ? AND ? AND op IS NOT NULL")
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer rowStmt.Close()
	out := &readBatches{}
	local := newStrTable()
	services := &serviceNames{stmt: serviceStmt, local: local, ids: make(map[int64]uint32)}
	for _, listed := range batches {
		var now schema.Batch
		err := now.Scan(batchStmt.QueryRowContext(ctx, listed.ID))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read batch %d of %s: %w", listed.ID, f.path, err)
		}
		b, err := f.readBatch(ctx, rowStmt, now, topics, withKeys, local, services)
		if err != nil {
			return nil, err
		}
		out.batches = append(out.batches, b)
	}
	out.local = local.strs
	return out, nil
}

// readBatch reads the operation spans of batch with rowStmt.
func (f *file) readBatch(ctx context.Context, rowStmt *sql.Stmt, batch schema.Batch, topics, withKeys bool, local *strTable, services *serviceNames) (*batchOps, error) {
	rows, err := rowStmt.QueryContext(ctx, batch.FirstSpan, batch.LastSpan)
	if err != nil {
		return nil, fmt.Errorf("read batch %d of %s: %w", batch.ID, f.path, err)
	}
	defer rows.Close()
	b := &batchOps{batch: batch, topics: topics}
	var vals [13]any
	dests := make([]any, 0, len(vals))
	n := 9
	if topics {
		n += 2
	}
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
		op, ok := vals[0].(string)
		if !ok {
			return nil, bad("op", vals[0])
		}
		var o opSpan
		index, known := schema.OpIndex(op)
		if !known {
			continue // not one of the operations this viewer knows
		}
		o.op = uint8(index)
		if o.start, ok = vals[1].(int64); !ok {
			return nil, bad("start_ns", vals[1])
		}
		if o.end, ok = vals[2].(int64); !ok {
			return nil, bad("end_ns", vals[2])
		}
		if o.size, ok = intOrNull(vals[3]); !ok {
			return nil, bad("body_size", vals[3])
		}
		if o.subs, ok = intOrNull(vals[4]); !ok {
			return nil, bad("subscribers", vals[4])
		}
		switch x := vals[5].(type) {
		case nil: // not said: stateless
		case int64:
			o.stateful = x != 0
		default:
			return nil, bad("stateful", vals[5])
		}
		if o.broadcaster, ok = textID(vals[6], local); !ok {
			return nil, bad("broadcaster", vals[6])
		}
		status, ok := vals[7].(int64)
		if !ok {
			return nil, bad("status_code", vals[7])
		}
		o.failed = status == statusError
		resource, ok := vals[8].(int64)
		if !ok {
			return nil, bad("resource", vals[8])
		}
		if o.service, err = services.id(ctx, resource); err != nil {
			return nil, fmt.Errorf("read batch %d of %s: %w", batch.ID, f.path, err)
		}
		next := 9
		if topics {
			if o.topic, ok = textID(vals[9], local); !ok {
				return nil, bad("topic", vals[9])
			}
			if o.glob, ok = textID(vals[10], local); !ok {
				return nil, bad("glob", vals[10])
			}
			next = 11
		}
		if withKeys {
			traceID, _ := vals[next].([]byte)
			spanID, _ := vals[next+1].([]byte)
			b.keys = append(b.keys, makeSpanKey(traceID, spanID))
		}
		b.ops = append(b.ops, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read batch %d of %s: %w", batch.ID, f.path, err)
	}
	return b, nil
}

// statusError is the status_code of a span whose status is Error: the
// file stores OTLP's numbering (schema/README.md), not Go's codes.Error.
// Its operation or phase failed.
const statusError = int64(2)

// serviceQuery selects the service.name of the resource of id ?1, NULL
// when it has none.
const serviceQuery = `SELECT json_extract(attributes, '$."` + string(semconv.ServiceNameKey) + `"') FROM ` + schema.ResourcesTable + ` WHERE id = ?1`

// serviceNames numbers the service names of a file's resources in a
// read's string table, reading each resource once: a file holds few
// resources and many spans.
type serviceNames struct {
	stmt  *sql.Stmt
	local *strTable
	ids   map[int64]uint32
}

func (s *serviceNames) id(ctx context.Context, resource int64) (uint32, error) {
	if id, ok := s.ids[resource]; ok {
		return id, nil
	}
	var name any
	err := s.stmt.QueryRowContext(ctx, resource).Scan(&name)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read resources[%d]: %w", resource, err)
	}
	id := uint32(0)
	switch x := name.(type) {
	case string:
		id = s.local.id(x)
	case nil:
	default: // a number or a boolean: its text, as the trace page shows it
		id = s.local.id(fmt.Sprint(x))
	}
	s.ids[resource] = id
	return id, nil
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
