package opstore

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/lonelytrace/lonelytrace/schema"
)

// A dashboard asks for the same window, or one a second later, every
// second or so, and all but the newest batches of what it reads it read
// the time before. The batches rule (schema/batches.go) makes keeping
// those spans between requests exact: the operation spans of a set of
// batches, once read, stay what the file holds for as long as their
// batches rows read the same.
//
// The cache keeps the operation spans of chunks: the batches of a window
// whose first span ids share their top bits (chunkShift), so that every
// window cuts the file at the same places, whatever its start. A chunk is
// known by a print of the batches rows it was read from; the spans are
// kept encoded, about 16 bytes each, so that the cache holds the whole
// window of a 10M-span file.

const (
	// maxCachedBytes bounds what a Store keeps of operation spans
	// between requests, over all its files: 48 MiB, about 3 million
	// operation spans, the 2 million of a 10M-span file among them.
	maxCachedBytes = 48 << 20
	// chunkCost is what a chunk costs in the cache besides its spans.
	chunkCost = 256
	// chunkShift cuts the span ids into chunks of 65,536: one read task
	// covers at most one chunk, a short read transaction that never
	// holds an old snapshot for long (a reader of an old snapshot keeps
	// the writer's WAL from starting over).
	chunkShift = 16
	// cacheIdle is how long a chunk is kept without a request that
	// needs it.
	cacheIdle = 30 * time.Second
	// maxStrings bounds the string table of a file's cache: a file of
	// more distinct broadcasters, topics, patterns and services starts
	// its cache afresh at the next request.
	maxStrings = 1 << 16
)

// Span is one operation span, as the cache keeps it and a visit hands it
// to its visitors.
type Span struct {
	// ID is the span's row id in its file, which search reads the row by.
	ID         int64
	Start, End int64
	Size, Subs int64 // -1 when NULL
	// Broadcaster, Topic, Glob and Service (the resource's service.name)
	// index the strings a visitor is given; 0 is NULL or "". Topic and
	// Glob are 0 in a window read without them (Plan's topics).
	Broadcaster, Topic, Glob, Service uint32
	Op                                uint8 // index in schema.Operations
	Stateful                          bool
	// Failed is set when the span's status is Error.
	Failed bool
}

// readBatches are the operation spans of batches as one read returns
// them: their strings are numbered in a table of the read's own, local,
// until keep numbers them in the cache's.
type readBatches struct {
	// ops are the spans of the batches in id order; keys their keys, when
	// read.
	ops   []Span
	keys  []SpanKey
	local []string
	// exits are the spans whose chain of parents leaves the file
	// (phases.go), when keys are read.
	exits []exit
}

// chunkKey is the print of the batches rows a chunk was read from.
type chunkKey struct {
	batches, spans int64
	hash           uint64
}

// keyOf prints batches: any change to any of their rows, or one more or
// one less, prints otherwise.
func keyOf(batches []schema.Batch) chunkKey {
	h := fnv.New64a()
	var buf [7 * 8]byte
	k := chunkKey{batches: int64(len(batches))}
	for _, b := range batches {
		for i, v := range [...]int64{b.ID, b.FirstSpan, b.LastSpan, b.Spans, b.MinStartNs, b.MaxStartNs, b.WrittenNs} {
			binary.LittleEndian.PutUint64(buf[i*8:], uint64(v))
		}
		h.Write(buf[:])
		k.spans += b.Spans
	}
	k.hash = h.Sum64()
	return k
}

// chunkOps is the operation spans of a chunk, encoded (encodeOps).
type chunkOps struct {
	key  chunkKey
	n    int
	data []byte
	keys []SpanKey
	// exits are the spans whose chain of parents leaves the file, with
	// what the visits that followed them found (under the cache's lock).
	exits []exit
	// topics is set when topic and glob were read.
	topics bool
	used   time.Time
}

func (c *chunkOps) cost() int {
	return chunkCost + len(c.data) + len(c.keys)*len(SpanKey{}) + len(c.exits)*int(unsafe.Sizeof(exit{}))
}

// Each span is a flags byte (operation index, stateful, failed, size
// and subscribers present), then varints: its row id less the previous
// span's (ids grow within a chunk), its start less the previous span's,
// its duration, its size and subscribers when present, and its
// four string ids.
const (
	flagStateful = 1 << 3
	flagFailed   = 1 << 4
	flagSize     = 1 << 5
	flagSubs     = 1 << 6
)

// encodeOps appends the encoding of ops to dst.
func encodeOps(dst []byte, ops []Span) []byte {
	var prev, prevID int64
	for i := range ops {
		o := &ops[i]
		f := o.Op & 7
		if o.Stateful {
			f |= flagStateful
		}
		if o.Failed {
			f |= flagFailed
		}
		if o.Size >= 0 {
			f |= flagSize
		}
		if o.Subs >= 0 {
			f |= flagSubs
		}
		dst = append(dst, f)
		dst = binary.AppendUvarint(dst, uint64(o.ID-prevID))
		prevID = o.ID
		dst = binary.AppendVarint(dst, o.Start-prev)
		dst = binary.AppendVarint(dst, o.End-o.Start)
		prev = o.Start
		if o.Size >= 0 {
			dst = binary.AppendUvarint(dst, uint64(o.Size))
		}
		if o.Subs >= 0 {
			dst = binary.AppendUvarint(dst, uint64(o.Subs))
		}
		for _, id := range [...]uint32{o.Broadcaster, o.Topic, o.Glob, o.Service} {
			dst = binary.AppendUvarint(dst, uint64(id))
		}
	}
	return dst
}

// decodeOps decodes n spans of data into dst[:0].
func decodeOps(dst []Span, data []byte, n int) []Span {
	if cap(dst) < n {
		dst = make([]Span, 0, n)
	}
	dst = dst[:0]
	var prev, prevID int64
	i := 0
	varint := func() int64 {
		v, k := binary.Varint(data[i:])
		i += k
		return v
	}
	uvarint := func() uint64 {
		v, k := binary.Uvarint(data[i:])
		i += k
		return v
	}
	for range n {
		f := data[i]
		i++
		o := Span{Op: f & 7, Stateful: f&flagStateful != 0, Failed: f&flagFailed != 0, Size: -1, Subs: -1}
		o.ID = prevID + int64(uvarint())
		prevID = o.ID
		o.Start = prev + varint()
		o.End = o.Start + varint()
		prev = o.Start
		if f&flagSize != 0 {
			o.Size = int64(uvarint())
		}
		if f&flagSubs != 0 {
			o.Subs = int64(uvarint())
		}
		o.Broadcaster, o.Topic, o.Glob, o.Service = uint32(uvarint()), uint32(uvarint()), uint32(uvarint()), uint32(uvarint())
		dst = append(dst, o)
	}
	return dst
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
	return t.add(s)
}

// idOf is id of the text b, which it copies only when it is new.
func (t *strTable) idOf(b []byte) uint32 {
	if n, ok := t.ids[string(b)]; ok {
		return n
	}
	return t.add(string(b))
}

// add numbers s, a string t does not hold.
func (t *strTable) add(s string) uint32 {
	n := uint32(len(t.strs))
	t.strs = append(t.strs, s)
	t.ids[s] = n
	return n
}

// opCache keeps the operation spans of a file's chunks between requests.
type opCache struct {
	mu sync.Mutex
	// table numbers the strings of the spans in chunks. It is replaced,
	// with chunks emptied, when it grows past maxStrings; a request that
	// began with the old one keeps using it and stores nothing.
	table  *strTable
	chunks map[int64]*chunkOps
	held   int // bytes in chunks (cost)
	budget int // most bytes held
}

// opsPlan is one request's use of a file's cache: the string table its
// spans number their strings in.
type opsPlan struct {
	table *strTable
	// at is when the request began; evicted is set once it has made room
	// in the cache for its own chunks.
	at      time.Time
	evicted bool
}

// begin starts a request's use of the cache.
func (c *opCache) begin() *opsPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.table == nil || len(c.table.strs) >= maxStrings {
		c.table, c.chunks, c.held = newStrTable(), make(map[int64]*chunkOps), 0
	}
	return &opsPlan{table: c.table, at: time.Now()}
}

// lookup returns the chunk k as read from batches, read with their
// topics and patterns when topics asks for them, and a copy of its exits;
// nil when the cache does not hold it.
func (c *opCache) lookup(p *opsPlan, k int64, key chunkKey, topics bool) (*chunkOps, []exit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.chunks[k]; ok && ch.key == key && c.table == p.table && (ch.topics || !topics) {
		ch.used = p.at
		return ch, slices.Clone(ch.exits)
	}
	return nil, nil
}

// settled keeps what a visit found of the exits of chunk k, read from
// batches of print key, when the cache still holds that chunk: exits are
// its exits, in order, with their states.
func (c *opCache) settled(k int64, key chunkKey, exits []exit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.chunks[k]; ok && ch.key == key && len(ch.exits) == len(exits) {
		copy(ch.exits, exits)
	}
}

// keep numbers the strings of r in p's table, and keeps its spans as
// chunk k of print key while p's table is still the cache's and there is
// room: the first time there is none, it forgets every chunk that p's
// request does not use. It returns the strings the spans' ids now index.
func (c *opCache) keep(p *opsPlan, r *readBatches, k int64, key chunkKey, topics bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint32, len(r.local))
	for i, s := range r.local {
		ids[i] = p.table.id(s)
	}
	for i := range r.ops {
		o := &r.ops[i]
		o.Broadcaster, o.Topic, o.Glob, o.Service = ids[o.Broadcaster], ids[o.Topic], ids[o.Glob], ids[o.Service]
	}
	if c.table != p.table {
		return p.table.strs
	}
	ch := &chunkOps{key: key, n: len(r.ops), data: encodeOps(nil, r.ops), keys: r.keys, exits: slices.Clone(r.exits), topics: topics, used: time.Now()}
	if old, ok := c.chunks[k]; ok {
		c.held -= old.cost()
		delete(c.chunks, k)
	}
	if c.held+ch.cost() > c.budget && !p.evicted {
		p.evicted = true
		c.forget(func(o *chunkOps) bool { return o.used.Before(p.at) })
	}
	if c.held+ch.cost() <= c.budget {
		c.chunks[k] = ch
		c.held += ch.cost()
	}
	return p.table.strs
}

// forget drops the chunks that drop says to.
func (c *opCache) forget(drop func(*chunkOps) bool) {
	for k, ch := range c.chunks {
		if drop(ch) {
			delete(c.chunks, k)
			c.held -= ch.cost()
		}
	}
}

// done forgets the chunks nobody asked for lately.
func (c *opCache) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.forget(func(ch *chunkOps) bool { return now.Sub(ch.used) > cacheIdle })
}

// strings returns the strings of p's table that its spans refer to. The
// table only grows, so the slice stays valid for them.
func (c *opCache) strings(p *opsPlan) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return p.table.strs
}
