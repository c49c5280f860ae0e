package exporter

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Rows are encoded ahead, on the goroutine that calls ExportSpans (the
// batch processor's), so that the writer goroutine, the one that cannot be
// parallel, spends its time in SQLite. Encoding a span needs the ids of
// its attribute keys, which only the writer hands out. The scheme, whole:
//
//   - After a transaction that added keys, the writer publishes the ids it
//     has committed as a keySnapshot (publishKeys); encoders use the
//     latest one, and leave a span with a key not in it to the writer.
//   - The writer's ids are valid for one epoch. A failed transaction (its
//     ids may be rolled back) or a reopened file (another file's ids) makes
//     the writer forget them all (forgetKeys): it takes a new epoch and
//     withdraws the snapshot until it publishes again.
//   - Each batch encoded ahead carries the epoch of its snapshot. The
//     writer uses the rows of a batch of its current epoch and encodes
//     those of any other again itself (writer.write).
//
// Epochs come from the Exporter's encoder, which outlives every file the
// writer opens, so a reopened file's writer never takes an old epoch.

// encoder is the encoding ahead that ExportSpans and the writer share.
type encoder struct {
	// keys are the key ids the writer has published; nil until it has.
	keys atomic.Pointer[keySnapshot]
	// epochs hands out the writer's key epochs.
	epochs atomic.Uint64
	// perSpan is the arena bytes per span of the last batch encoded.
	perSpan atomic.Int64
	// free holds *encoded the writer is done with, for encode to reuse:
	// a batch's rows and arena are as large as the last ones, and
	// allocating them for every batch made the garbage collector's work
	// and the heap's peak grow with the rate.
	free sync.Pool
}

// keySnapshot is a copy of the writer's attribute key ids, all committed
// to the file, valid in its epoch.
type keySnapshot struct {
	epoch uint64
	ids   map[string]int64
}

// encoded is a batch of spans encoded ahead. rows[i] is the fields of
// spans[i], unless ok[i] is false: a span the writer has to encode itself.
type encoded struct {
	epoch uint64
	rows  []spanFields
	ok    []bool
	arena arena
	// used holds the key ids the rows refer to, for the last_span of
	// their attribute_keys rows (reclaim.go).
	used map[int64]struct{}
}

// encode encodes spans with the key ids the writer has published, or
// returns nil before it has published any.
func (c *encoder) encode(spans []queued) *encoded {
	snap := c.keys.Load()
	if snap == nil {
		return nil
	}
	// The arena is sized after the last batch, so that it seldom grows:
	// a grown arena keeps its old array, which its text points into.
	perSpan := max(c.perSpan.Load(), 128)
	enc, _ := c.free.Get().(*encoded)
	if enc == nil {
		enc = &encoded{}
	}
	enc.epoch = snap.epoch
	enc.rows = slicesGrow(enc.rows, len(spans))
	enc.ok = slicesGrow(enc.ok, len(spans))
	if need := int(perSpan+perSpan/8) * len(spans); cap(enc.arena) < need {
		enc.arena = make(arena, 0, need)
	}
	if enc.used == nil {
		enc.used = make(map[int64]struct{})
	}
	clear(enc.used)
	missed := false
	keyIDs := func(key string) int64 {
		id, ok := snap.ids[key]
		if ok {
			enc.used[id] = struct{}{}
		} else {
			missed = true
		}
		return id
	}
	for i, s := range spans {
		if s.isNil() {
			continue
		}
		missed = false
		encodeRow(&enc.rows[i], &enc.arena, s, keyIDs)
		enc.ok[i] = !missed
	}
	c.perSpan.Store(int64(len(enc.arena) / len(spans)))
	return enc
}

// recycle gives enc, which nothing refers to any more, back for encode to
// reuse. Its rows are cleared, so that they keep no span's strings alive,
// and so is its arena: text that still pointed into it would read as
// zeros at once, not as another batch's text later.
func (c *encoder) recycle(enc *encoded) {
	if enc == nil {
		return
	}
	clear(enc.rows)
	clear(enc.arena)
	enc.arena = enc.arena[:0]
	c.free.Put(enc)
}

// slicesGrow returns s with length n and every element zero, reusing its
// array when it is large enough.
func slicesGrow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// forgetKeys starts a new key epoch: rows encoded before it are encoded
// again by the writer, and encoders wait for the writer's next
// publishKeys.
func (w *writer) forgetKeys() {
	w.keyEpoch = w.enc.epochs.Add(1)
	w.keysChanged = true
	w.enc.keys.Store(nil)
}

// publishKeys hands the key ids the writer has committed to the encoders,
// after a transaction that added some.
func (w *writer) publishKeys() {
	if !w.keysChanged {
		return
	}
	w.keysChanged = false
	w.enc.keys.Store(&keySnapshot{epoch: w.keyEpoch, ids: maps.Clone(w.keys)})
}
