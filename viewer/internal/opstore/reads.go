package opstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// The reads of one file: its totals, its retention, and the operation
// spans of its batches. Each runs in its own short read transaction.

// countSpans counts the spans of f whose start is in [since, until), by
// the batches rule (schema.CountInWindowQuery); fs holds f's totals.
func (f *File) countSpans(ctx context.Context, since, until int64, fs model.FileSummary) (int64, error) {
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
func (f *File) describe(ctx context.Context) (model.FileSummary, error) {
	fs := model.FileSummary{Path: f.path}
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
	// The WAL beside the file counts in its footprint, which the size
	// limit covers too; no WAL is no bytes.
	if fi, err := os.Stat(f.path + "-wal"); err == nil {
		fs.WALBytes = fi.Size()
	}
	rows, err := f.db.QueryContext(ctx, "SELECT key, value FROM meta WHERE key IN (?, ?, ?)", schema.MetaDroppedSpans, schema.MetaFailedSpans, schema.MetaCheckpointsBlocked)
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
		case schema.MetaCheckpointsBlocked:
			fs.CheckpointsBlocked = n
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
func (f *File) retention(ctx context.Context) (*model.Retention, int64, error) {
	var r model.Retention
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

// opColumns selects what an Span holds of an operation span, and what
// the rule of phases (phases.go) needs of it, in as few columns as can
// carry it: each column of each row is two calls into SQLite (its type,
// its value). The third column packs the operation's index in
// schema.Operations (opUnknown for any other), in bit 8 whether the span
// is stateful, in bit 9 whether it failed, in bit 10 whether it has a
// parent, and from bit 11 on its row id less ?1, which tells the batch it
// belongs to. The trace's row id and the parent's id follow the
// resource, the parent's read only for a span that has one. Parameters ?3
// onwards are the operations' names, then the status code of an error.
var opColumns = func() string {
	var b strings.Builder
	b.WriteString("start_ns, end_ns, (CASE op")
	for i := range schema.Operations {
		fmt.Fprintf(&b, " WHEN ?%d THEN %d", i+3, i)
	}
	fmt.Fprintf(&b, " ELSE %d END) | ((coalesce(stateful, 0) != 0) << 8) | ((status_code = ?%d) << 9) | ((parent_span_id IS NOT NULL) << 10) | ((id - ?1) << 11), body_size, subscribers, broadcaster, resource, trace, parent_span_id", opUnknown, len(schema.Operations)+3)
	return b.String()
}()

// opUnknown is the packed index of an operation this viewer does not know.
const opUnknown = 255

// topicColumns follow opColumns when the spans' topics and patterns are
// read: only when they are needed, as two text columns are a tenth of a
// scan.
const topicColumns = ", topic, glob"

// readBatches reads the operation spans of batches, in id order, in one
// read transaction and one query over their span ids, whatever their
// number: a file written at a low rate has a batch for every few spans.
// The cache keeps them under the print of the rows they were listed
// with. Retention may have deleted some of the spans since: then the
// spans read are fewer than those rows say, and the rows read otherwise
// now and for good (the batches rule, schema/batches.go), so the cache
// will not take them for those rows again. The string columns are
// numbered in a table of the read's own. The phases of operations found
// in f are left out, in the same transaction (resolvePhases).
//
// It reads through a scan connection of f (scans.go), which maps the file
// for this one transaction (mapFile): every page of the map that the read
// touches counts in the process's resident set until the map goes.
//
// buf, when not nil, is an array the spans may go in: a reader that reads
// one chunk after another passes the last one's.
func (f *File) readBatches(ctx context.Context, batches []schema.Batch, topics, withKeys bool, buf []Span) (*readBatches, error) {
	out := &readBatches{ops: buf[:0]}
	if len(batches) == 0 {
		return out, nil
	}
	fail := func(err error) (*readBatches, error) {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	local := newStrTable()
	err := f.scans.read(ctx, func(c *scanConn) error {
		services := &serviceNames{local: local, ids: make(map[int64]uint32)}
		var err error
		if services.stmt, err = c.stmt(serviceQuery); err != nil {
			return err
		}
		var traces []int64
		var ps []parented
		var nb []neighbour
		if err := f.readSpanRange(ctx, c, batches, topics, withKeys, local, services, out, &traces, &ps, &nb); err != nil {
			return err
		}
		return f.resolvePhases(ctx, c, batches[0].FirstSpan, batches[len(batches)-1].LastSpan, out, traces, ps, nb, withKeys)
	})
	if err != nil {
		return fail(err)
	}
	out.local = local.strs
	return out, nil
}

// readSpanRange reads the operation spans of batches, which are in id
// order, with one query over their span ids, and adds them to out, their
// traces' row ids to traces, and those that have a parent to ps. In one
// file (without withKeys) it adds the operation spans within edgeMargin
// ids beyond the batches to nb.
func (f *File) readSpanRange(ctx context.Context, c *scanConn, batches []schema.Batch, topics, withKeys bool, local *strTable, services *serviceNames, out *readBatches, traces *[]int64, ps *[]parented, nb *[]neighbour) error {
	first, last := batches[0].FirstSpan, batches[len(batches)-1].LastSpan
	// In one file, the operation spans just beyond the range are read
	// too, as neighbours: the rule of phases looks at them (edgeMargin).
	lo, hi := first, last
	if !withKeys {
		lo, hi = max(first-edgeMargin, 0), last+edgeMargin
	}
	rows, err := c.stmt(spanRangeQuery(topics, withKeys))
	if err != nil {
		return err
	}
	if err := rows.Start(spanRangeArgs(lo, hi)...); err != nil {
		return err
	}
	ops := out.ops
	var keys []SpanKey
	k := 0 // the batch of the row
	for n := 0; ; n++ {
		if n%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		more, err := rows.Next()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if rows.Type(2) != sqlitec.Integer {
			return badColumn("op")
		}
		packed := rows.Int64(2)
		id := lo + packed>>11
		if id < first || id > last {
			if packed&0xff != opUnknown {
				e, err := scanNeighbour(rows, packed)
				if err != nil {
					return err
				}
				*nb = append(*nb, e)
			}
			continue
		}
		for k < len(batches) && id > batches[k].LastSpan {
			k++
		}
		if k == len(batches) || id < batches[k].FirstSpan || packed&0xff == opUnknown {
			continue // not in a batch read, or not an operation this viewer knows
		}
		o, trace, err := scanOp(rows, id, packed, topics, local, services)
		if err != nil {
			return err
		}
		*traces = append(*traces, trace)
		if packed&(1<<10) != 0 {
			*ps = append(*ps, parented{i: len(ops), parent: spanIDOf(rows.Bytes(8))})
		}
		if withKeys {
			next := 9
			if topics {
				next = 11
			}
			keys = append(keys, MakeSpanKey(rows.Bytes(next), rows.Bytes(next+1)))
		}
		ops = append(ops, o)
	}
	out.ops, out.keys = ops, keys
	return nil
}

// spanRangeQuery is readSpanRange's query over the span ids [?1, ?2]:
// opColumns, then topicColumns when topics are read, then the trace and
// span ids when keys are.
//
// The scan by row id reads every span of the range, operation or not,
// but in page order: through the operation index it would be one lookup
// in the table per operation, which costs about as much at the share of
// operations in a pub/sub application's spans.
func spanRangeQuery(topics, withKeys bool) string {
	cols := opColumns
	if topics {
		cols += topicColumns
	}
	if withKeys {
		cols += ", " + traceIDOf("spans") + ", span_id"
	}
	return "SELECT " + cols + " FROM spans WHERE id BETWEEN ?1 AND ?2 AND op IS NOT NULL"
}

// spanRangeArgs are spanRangeQuery's parameters for the span ids
// [lo, hi]: the range, the operations' names and the status code of an
// error (opColumns).
func spanRangeArgs(lo, hi int64) []any {
	args := make([]any, 0, len(schema.Operations)+3)
	args = append(args, lo, hi)
	for _, op := range schema.Operations {
		args = append(args, op)
	}
	return append(args, schema.StatusError)
}

// badColumn is the error of a row whose column col does not hold what
// the schema says.
func badColumn(col string) error {
	return fmt.Errorf("a span's %s is not what the schema says", col)
}

// scanNeighbour reads the row of rows, an operation's outside the
// batches read (packed is its opColumns' packed column), as a neighbour.
func scanNeighbour(rows *sqlitec.Stmt, packed int64) (neighbour, error) {
	start, ok1 := intCol(rows, 0)
	end, ok2 := intCol(rows, 1)
	trace, ok3 := intCol(rows, 7)
	if !ok1 || !ok2 || !ok3 {
		return neighbour{}, badColumn("start_ns, end_ns or trace")
	}
	return neighbour{trace: trace, op: uint8(packed & 0xff), start: start, end: end}, nil
}

// scanOp reads the row of rows, the operation span of row id id (packed
// is its opColumns' packed column), with its strings numbered in local
// and services; it returns the span and its trace's row id.
func scanOp(rows *sqlitec.Stmt, id, packed int64, topics bool, local *strTable, services *serviceNames) (o Span, trace int64, err error) {
	o = Span{ID: id}
	o.Op, o.Stateful, o.Failed = uint8(packed&0xff), packed&(1<<8) != 0, packed&(1<<9) != 0
	var ok bool
	if o.Start, ok = intCol(rows, 0); !ok {
		return o, 0, badColumn("start_ns")
	}
	if o.End, ok = intCol(rows, 1); !ok {
		return o, 0, badColumn("end_ns")
	}
	if o.Size, ok = intOrNull(rows, 3); !ok {
		return o, 0, badColumn("body_size")
	}
	if o.Subs, ok = intOrNull(rows, 4); !ok {
		return o, 0, badColumn("subscribers")
	}
	if o.Broadcaster, ok = textID(rows, 5, local); !ok {
		return o, 0, badColumn("broadcaster")
	}
	resource, ok := intCol(rows, 6)
	if !ok {
		return o, 0, badColumn("resource")
	}
	if o.Service, err = services.id(resource); err != nil {
		return o, 0, err
	}
	if trace, ok = intCol(rows, 7); !ok {
		return o, 0, badColumn("trace")
	}
	if topics {
		if o.Topic, ok = textID(rows, 9, local); !ok {
			return o, 0, badColumn("topic")
		}
		if o.Glob, ok = textID(rows, 10, local); !ok {
			return o, 0, badColumn("glob")
		}
	}
	return o, trace, nil
}

// serviceNamePath is the JSON path of service.name in
// resources.attributes.
const serviceNamePath = `$."` + string(semconv.ServiceNameKey) + `"`

// serviceQuery selects the service.name of the resource of id ?1, NULL
// when it has none.
const serviceQuery = `SELECT json_extract(attributes, '` + serviceNamePath + `') FROM ` + schema.ResourcesTable + ` WHERE id = ?1`

// serviceNames numbers the service names of a file's resources in a
// read's string table, reading each resource once: a file holds few
// resources and many spans.
type serviceNames struct {
	stmt  *sqlitec.Stmt
	local *strTable
	ids   map[int64]uint32
}

func (s *serviceNames) id(resource int64) (uint32, error) {
	if id, ok := s.ids[resource]; ok {
		return id, nil
	}
	if err := s.stmt.Start(resource); err != nil {
		return 0, err
	}
	found, err := s.stmt.Next()
	if err != nil {
		return 0, fmt.Errorf("read resources[%d]: %w", resource, err)
	}
	id := uint32(0)
	if found {
		switch s.stmt.Type(0) {
		case sqlitec.Text:
			id = s.local.idOf(s.stmt.Bytes(0))
		case sqlitec.Integer: // a number or a boolean: its text, as the trace page shows it
			id = s.local.id(strconv.FormatInt(s.stmt.Int64(0), 10))
		case sqlitec.Float:
			id = s.local.id(strconv.FormatFloat(s.stmt.Float(0), 'g', -1, 64))
		}
	}
	s.stmt.Reset()
	s.ids[resource] = id
	return id, nil
}

// intCol returns column i of the row of s, an integer; ok is false for
// any other type.
func intCol(s *sqlitec.Stmt, i int) (n int64, ok bool) {
	if s.Type(i) != sqlitec.Integer {
		return 0, false
	}
	return s.Int64(i), true
}

// intOrNull returns column i of the row of s as an int64, -1 when NULL;
// ok is false for any other type.
func intOrNull(s *sqlitec.Stmt, i int) (n int64, ok bool) {
	switch s.Type(i) {
	case sqlitec.Null:
		return -1, true
	case sqlitec.Integer:
		return s.Int64(i), true
	}
	return 0, false
}

// textID numbers column i of the row of s, text or NULL, in t.
func textID(s *sqlitec.Stmt, i int, t *strTable) (uint32, bool) {
	switch s.Type(i) {
	case sqlitec.Null:
		return 0, true
	case sqlitec.Text:
		return t.idOf(s.Bytes(i)), true
	}
	return 0, false
}

// traceIDOf is the column of a span's trace id, for the spans table
// named table in a query: a span's row holds its trace's row id, and the
// trace id is in the traces table.
func traceIDOf(table string) string {
	return "(SELECT trace_id FROM traces WHERE traces.id = " + table + ".trace)"
}

// SpanKey identifies a span across files: trace id then span id.
type SpanKey [24]byte

// MakeSpanKey returns the key of the span of ids traceID and spanID, as
// the file stores them.
func MakeSpanKey(traceID, spanID []byte) (k SpanKey) {
	copy(k[:16], traceID)
	copy(k[16:], spanID)
	return k
}

// rowKey identifies a span within one file: its trace's row id in place
// of the trace id.
func rowKey(trace int64, spanID []byte) (k SpanKey) {
	binary.BigEndian.PutUint64(k[:8], uint64(trace))
	copy(k[16:], spanID)
	return k
}
