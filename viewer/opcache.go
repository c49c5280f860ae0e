package viewer

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// A dashboard asks for the summary of the last minute every second or so,
// and all but the newest second of what it reads it read the time before.
// The writer's batches table makes keeping those spans between requests
// exact. Each write transaction adds one batches row and the range of span
// ids it filled, and no later transaction adds spans to that range;
// retention only deletes spans, and rewrites the count and start range of
// their batches row in the same transaction. So the operation spans of a
// batch, once read, stay what the file holds for as long as its batches
// row is unchanged. The row's written_ns tells it from a later batch that
// reuses its id after retention emptied the file.

const (
	// maxCachedOps bounds the operation spans a Viewer keeps between
	// requests, over all its files: about 48 bytes each (72 with the span
	// keys of a viewer of several files). A minute at 20,000 spans/s of
	// four-span traces is 300,000.
	maxCachedOps = 1 << 20
	// cacheIdle is how long a batch's spans are kept without a request
	// that needs them.
	cacheIdle = 30 * time.Second
	// readTaskSpans is about how many spans (operations or not) one read
	// transaction covers: reads of a large window are split into short
	// transactions, which run in parallel and never hold an old snapshot
	// for long (a reader of an old snapshot keeps the writer's WAL from
	// starting over).
	readTaskSpans = 1 << 16
	// maxStrings bounds the string table of a file's cache: a file of
	// more distinct broadcasters, topics and patterns starts its cache
	// afresh at the next request.
	maxStrings = 1 << 16
)

// opSpan is one operation span, as the summary keeps it.
type opSpan struct {
	start, end int64
	size, subs int64 // -1 when NULL
	// broadcaster, topic and glob index the cache's string table; 0 is
	// NULL or "". topic and glob are 0 in a batch read without them.
	broadcaster, topic, glob uint32
	op                       uint8 // index in schema.Operations
	stateful                 bool
}

// batchKey is a batches row: which spans it covers and what retention has
// left of them.
type batchKey struct {
	id, first, last, spans, minStart, maxStart, written int64
}

// batchOps holds the operation spans of one batch, in id order.
type batchOps struct {
	key batchKey
	ops []opSpan
	// keys are the span keys of ops, kept when the viewer reads several
	// files (it counts a span found in two of them once).
	keys []spanKey
	// topics is set when topic and glob were read.
	topics bool
	used   time.Time
}

// strTable numbers the strings of a file's operation spans; 0 is "".
type strTable struct {
	strs []string
	ids  map[string]uint32
}

func newStrTable() *strTable {
	return &strTable{strs: []string{""}, ids: map[string]uint32{"": 0}}
}

func (t *strTable) id(s string) uint32 {
	if n, ok := t.ids[s]; ok {
		return n
	}
	n := uint32(len(t.strs))
	t.strs = append(t.strs, s)
	t.ids[s] = n
	return n
}

// opCache keeps the operation spans of a file's batches between requests.
type opCache struct {
	mu sync.Mutex
	// table numbers the strings of the spans in batches. It is replaced,
	// with batches emptied, when it grows past maxStrings; a request that
	// began with the old one keeps using it and stores nothing.
	table   *strTable
	batches map[int64]*batchOps
	held    int // spans in batches
	budget  int // most spans held after a request
}

// opsPlan is what one request reads of a file: the batches of its window,
// those found in the cache and those to read.
type opsPlan struct {
	table  *strTable
	parts  []*batchOps
	misses []batchKey
}

// plan looks up the batches keys in the cache: topics asks for batches
// read with their topics and patterns.
func (c *opCache) plan(keys []batchKey, topics bool) *opsPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.table == nil || len(c.table.strs) > maxStrings {
		c.table, c.batches, c.held = newStrTable(), make(map[int64]*batchOps), 0
	}
	p := &opsPlan{table: c.table}
	for _, k := range keys {
		if b, ok := c.batches[k.id]; ok && b.key == k && (b.topics || !topics) {
			p.parts = append(p.parts, b)
		} else {
			p.misses = append(p.misses, k)
		}
	}
	return p
}

// readBatches are batches as one read returns them: their strings are
// numbered in a table of the read's own, local, until add numbers them in
// the cache's.
type readBatches struct {
	batches []*batchOps
	local   []string
}

// add numbers the strings of each read in p's table, adds the batches to
// p, keeps them in the cache when p's table is still the cache's, and
// forgets what the cache may no longer hold.
func (c *opCache) add(p *opsPlan, reads []*readBatches) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	current := c.table == p.table
	for _, r := range reads {
		ids := make([]uint32, len(r.local))
		for i, s := range r.local {
			ids[i] = p.table.id(s)
		}
		for _, b := range r.batches {
			for i := range b.ops {
				o := &b.ops[i]
				o.broadcaster, o.topic, o.glob = ids[o.broadcaster], ids[o.topic], ids[o.glob]
			}
			p.parts = append(p.parts, b)
			if current {
				if old, ok := c.batches[b.key.id]; ok {
					c.held -= len(old.ops)
				}
				c.batches[b.key.id] = b
				c.held += len(b.ops)
			}
		}
	}
	slices.SortFunc(p.parts, func(a, b *batchOps) int { return cmp.Compare(a.key.id, b.key.id) })
	for _, b := range p.parts {
		b.used = now
	}
	// Forget batches nobody asked for lately, then, over the budget, the
	// least recently used, the oldest first.
	var all []*batchOps
	for id, b := range c.batches {
		if now.Sub(b.used) > cacheIdle {
			delete(c.batches, id)
			c.held -= len(b.ops)
			continue
		}
		all = append(all, b)
	}
	if c.held <= c.budget {
		return
	}
	slices.SortFunc(all, func(a, b *batchOps) int {
		return cmp.Or(a.used.Compare(b.used), cmp.Compare(a.key.id, b.key.id))
	})
	for _, b := range all {
		if c.held <= c.budget {
			break
		}
		delete(c.batches, b.key.id)
		c.held -= len(b.ops)
	}
}

// strings returns the strings of p's table that its batches refer to.
// The table only grows, so the slice stays valid for them.
func (c *opCache) strings(p *opsPlan) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return p.table.strs
}

// windowBatches lists the batches rows whose spans start in [lo, hi) or
// around it, in id order.
func (f *file) windowBatches(ctx context.Context, lo, hi int64) ([]batchKey, error) {
	rows, err := f.db.QueryContext(ctx, `SELECT id, first_span, last_span, spans, min_start_ns, max_start_ns, written_ns
		FROM batches WHERE max_start_ns >= ? AND min_start_ns < ? AND spans > 0 ORDER BY id`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read batches of %s: %w", f.path, err)
	}
	defer rows.Close()
	var out []batchKey
	for rows.Next() {
		var k batchKey
		if err := rows.Scan(&k.id, &k.first, &k.last, &k.spans, &k.minStart, &k.maxStart, &k.written); err != nil {
			return nil, fmt.Errorf("read batches of %s: %w", f.path, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read batches of %s: %w", f.path, err)
	}
	return out, nil
}

// readBatches reads the operation spans of the batches keys in one read
// transaction, each with its batches row as that transaction sees it (a
// batch that retention changed since it was listed is read as it is now;
// one it deleted is left out). The string columns are numbered in a
// table of the read's own.
func (f *file) readBatches(ctx context.Context, keys []batchKey, topics, withKeys bool) (*readBatches, error) {
	tx, err := f.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer tx.Rollback()
	keyStmt, err := tx.PrepareContext(ctx, "SELECT first_span, last_span, spans, min_start_ns, max_start_ns, written_ns FROM batches WHERE id = ?")
	if err != nil {
		return nil, fmt.Errorf("read operations of %s: %w", f.path, err)
	}
	defer keyStmt.Close()
	cols := "op, start_ns, end_ns, body_size, subscribers, stateful, broadcaster"
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
	for _, k := range keys {
		now := batchKey{id: k.id}
		err := keyStmt.QueryRowContext(ctx, k.id).Scan(&now.first, &now.last, &now.spans, &now.minStart, &now.maxStart, &now.written)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read batch %d of %s: %w", k.id, f.path, err)
		}
		b, err := f.readBatch(ctx, rowStmt, now, topics, withKeys, local)
		if err != nil {
			return nil, err
		}
		out.batches = append(out.batches, b)
	}
	out.local = local.strs
	return out, nil
}

// readBatch reads the operation spans of the batch k with rowStmt.
func (f *file) readBatch(ctx context.Context, rowStmt *sql.Stmt, k batchKey, topics, withKeys bool, local *strTable) (*batchOps, error) {
	rows, err := rowStmt.QueryContext(ctx, k.first, k.last)
	if err != nil {
		return nil, fmt.Errorf("read batch %d of %s: %w", k.id, f.path, err)
	}
	defer rows.Close()
	b := &batchOps{key: k, topics: topics}
	var vals [11]any
	dests := make([]any, 0, len(vals))
	n := 7
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
		return fmt.Errorf("read batch %d of %s: a span's %s is %T, not what the schema says", k.id, f.path, col, v)
	}
	for rows.Next() {
		if err := rows.Scan(dests...); err != nil {
			return nil, fmt.Errorf("read batch %d of %s: %w", k.id, f.path, err)
		}
		op, ok := vals[0].(string)
		if !ok {
			return nil, bad("op", vals[0])
		}
		var o opSpan
		if o.op, ok = opIndex(op); !ok {
			continue // not one of the operations this viewer knows
		}
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
		next := 7
		if topics {
			if o.topic, ok = textID(vals[7], local); !ok {
				return nil, bad("topic", vals[7])
			}
			if o.glob, ok = textID(vals[8], local); !ok {
				return nil, bad("glob", vals[8])
			}
			next = 9
		}
		if withKeys {
			traceID, _ := vals[next].([]byte)
			spanID, _ := vals[next+1].([]byte)
			b.keys = append(b.keys, makeSpanKey(traceID, spanID))
		}
		b.ops = append(b.ops, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read batch %d of %s: %w", k.id, f.path, err)
	}
	return b, nil
}

// opIndex returns op's index in schema.Operations.
func opIndex(op string) (uint8, bool) {
	for i, o := range schema.Operations {
		if o == op {
			return uint8(i), true
		}
	}
	return 0, false
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
