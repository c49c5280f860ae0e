package viewer

import (
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/lonelytrace/lonelytrace/schema"
)

// A dashboard asks for the summary of the last minute every second or so,
// and all but the newest second of what it reads it read the time before.
// The batches rule (schema/batches.go) makes keeping those spans between
// requests exact: the operation spans of a batch, once read, stay what
// the file holds for as long as its batches row reads the same.

const (
	// maxCachedBytes bounds what a Viewer keeps of operation spans
	// between requests, over all its files: 56 bytes a span (80 with the
	// span keys of a viewer of several files) and batchCost a batch, 48
	// MiB in all, about 880,000 operation spans of large batches. A
	// minute at 20,000 spans/s of four-span traces is 60,000 operation
	// spans, and a day of the 10M-span benchmark file 290,000. A larger
	// window that comes back reads again what the cache cannot hold.
	maxCachedBytes = 48 << 20
	// batchCost is what a batch costs in the cache besides its spans.
	batchCost = 160
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

// cost is what b takes in the cache, in bytes.
func (b *batchOps) cost() int {
	return batchCost + len(b.ops)*int(unsafe.Sizeof(opSpan{})) + len(b.keys)*int(unsafe.Sizeof(spanKey{}))
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
	held    int // bytes in batches (cost)
	budget  int // most bytes held
}

// opsPlan is one request's use of a file's cache: the string table its
// batches number their strings in.
type opsPlan struct {
	table *strTable
	// at is when the request began; evicted is set once it has made room
	// in the cache for its own batches.
	at      time.Time
	evicted bool
}

// begin starts a request's use of the cache.
func (c *opCache) begin() *opsPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.table == nil || len(c.table.strs) >= maxStrings {
		c.table, c.batches, c.held = newStrTable(), make(map[int64]*batchOps), 0
	}
	return &opsPlan{table: c.table, at: time.Now()}
}

// lookup returns the batches the cache holds as they read now (parts),
// read with their topics and patterns when topics asks for them, and the
// others (misses), in the order of batches.
func (c *opCache) lookup(p *opsPlan, batches []schema.Batch, topics bool) (parts []*batchOps, misses []schema.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range batches {
		if b, ok := c.batches[k.ID]; ok && b.batch == k && c.table == p.table && (b.topics || !topics) {
			b.used = p.at
			parts = append(parts, b)
		} else {
			misses = append(misses, k)
		}
	}
	return parts, misses
}

// readBatches are batches as one read returns them: their strings are
// numbered in a table of the read's own, local, until keep numbers them in
// the cache's.
type readBatches struct {
	batches []*batchOps
	local   []string
}

// keep numbers the strings of r in p's table and keeps its batches in the
// cache, while p's table is still the cache's and there is room: the
// first time there is none, it forgets every batch that p's request does
// not use. It returns the strings the batches' ids now index.
func (c *opCache) keep(p *opsPlan, r *readBatches) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint32, len(r.local))
	for i, s := range r.local {
		ids[i] = p.table.id(s)
	}
	now := time.Now()
	current := c.table == p.table
	for _, b := range r.batches {
		for i := range b.ops {
			o := &b.ops[i]
			o.broadcaster, o.topic, o.glob, o.service = ids[o.broadcaster], ids[o.topic], ids[o.glob], ids[o.service]
		}
		b.used = now
		if !current {
			continue
		}
		if c.held+b.cost() > c.budget && !p.evicted {
			p.evicted = true
			c.forget(func(o *batchOps) bool { return o.used.Before(p.at) })
		}
		if old, ok := c.batches[b.batch.ID]; ok {
			c.held -= old.cost()
			delete(c.batches, b.batch.ID)
		}
		if c.held+b.cost() <= c.budget {
			// The read's batches share one array: a batch kept gets its
			// own, so that it holds no more than it counts.
			kept := *b
			kept.ops, kept.keys = slices.Clone(b.ops), slices.Clone(b.keys)
			b = &kept
			c.batches[b.batch.ID] = b
			c.held += b.cost()
		}
	}
	return p.table.strs
}

// forget drops the batches that drop says to.
func (c *opCache) forget(drop func(*batchOps) bool) {
	for id, b := range c.batches {
		if drop(b) {
			delete(c.batches, id)
			c.held -= b.cost()
		}
	}
}

// done forgets the batches nobody asked for lately.
func (c *opCache) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.forget(func(b *batchOps) bool { return now.Sub(b.used) > cacheIdle })
}

// strings returns the strings of p's table that its batches refer to.
// The table only grows, so the slice stays valid for them.
func (c *opCache) strings(p *opsPlan) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return p.table.strs
}
