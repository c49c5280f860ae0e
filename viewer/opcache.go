package viewer

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// A dashboard asks for the summary of the last minute every second or so,
// and all but the newest second of what it reads it read the time before.
// The batches rule (schema/batches.go) makes keeping those spans between
// requests exact: the operation spans of a batch, once read, stay what
// the file holds for as long as its batches row reads the same.

const (
	// maxCachedOps bounds the operation spans a Viewer keeps between
	// requests, over all its files: about 56 bytes each (80 with the span
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
	// broadcaster, topic, glob and service (the resource's service.name)
	// index the cache's string table; 0 is NULL or "". topic and glob are
	// 0 in a batch read without them.
	broadcaster, topic, glob, service uint32
	op                                uint8 // index in schema.Operations
	stateful                          bool
	// failed is set when the span's status is Error.
	failed bool
}

// batchOps holds the operation spans of one batch, in id order.
type batchOps struct {
	batch schema.Batch
	ops   []opSpan
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
	misses []schema.Batch
}

// plan looks up the batches of a window in the cache: topics asks for batches
// read with their topics and patterns.
func (c *opCache) plan(batches []schema.Batch, topics bool) *opsPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.table == nil || len(c.table.strs) > maxStrings {
		c.table, c.batches, c.held = newStrTable(), make(map[int64]*batchOps), 0
	}
	p := &opsPlan{table: c.table}
	for _, k := range batches {
		if b, ok := c.batches[k.ID]; ok && b.batch == k && (b.topics || !topics) {
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
				o.broadcaster, o.topic, o.glob, o.service = ids[o.broadcaster], ids[o.topic], ids[o.glob], ids[o.service]
			}
			p.parts = append(p.parts, b)
			if current {
				if old, ok := c.batches[b.batch.ID]; ok {
					c.held -= len(old.ops)
				}
				c.batches[b.batch.ID] = b
				c.held += len(b.ops)
			}
		}
	}
	slices.SortFunc(p.parts, func(a, b *batchOps) int { return cmp.Compare(a.batch.ID, b.batch.ID) })
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
		return cmp.Or(a.used.Compare(b.used), cmp.Compare(a.batch.ID, b.batch.ID))
	})
	for _, b := range all {
		if c.held <= c.budget {
			break
		}
		delete(c.batches, b.batch.ID)
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
