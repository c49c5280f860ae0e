package exporter

import (
	"maps"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Rows are encoded ahead, on the goroutine that calls ExportSpans (the
// batch processor's), so that the writer goroutine, the one that cannot be
// parallel, spends its time in SQLite. Encoding a span needs the ids of
// its attribute keys, which the writer hands out: it publishes those it
// has committed as a keySnapshot, and a span with a key not in it is left
// for the writer to encode.

// keySnapshot is a copy of the writer's attribute key ids, all committed
// to the file. Its epoch changes whenever the writer forgets its ids (a
// failed transaction, a reopened file): rows encoded under an older epoch
// are encoded again by the writer.
type keySnapshot struct {
	epoch uint64
	ids   map[string]int64
}

// keyEpochs hands out the epochs of every writer in the process, so that
// a reopened file's writer never takes an epoch of the one before.
var keyEpochs atomic.Uint64

// encoded is a batch of spans encoded ahead. rows[i] is the fields of
// spans[i], unless ok[i] is false: a span the writer has to encode itself.
type encoded struct {
	epoch uint64
	rows  []spanFields
	ok    []bool
	arena arena
}

// encode encodes spans with the key ids the writer has published, or
// returns nil before it has published any.
func (e *Exporter) encode(spans []sdktrace.ReadOnlySpan) *encoded {
	snap := e.keys.Load()
	if snap == nil {
		return nil
	}
	// The arena is sized after the last batch, so that it seldom grows:
	// a grown arena keeps its old array, which its text points into.
	perSpan := max(e.encodedBytes.Load(), 128)
	enc := &encoded{
		epoch: snap.epoch,
		rows:  make([]spanFields, len(spans)),
		ok:    make([]bool, len(spans)),
		arena: make(arena, 0, int(perSpan+perSpan/8)*len(spans)),
	}
	missed := false
	keyIDs := func(key string) int64 {
		id, ok := snap.ids[key]
		missed = missed || !ok
		return id
	}
	for i, s := range spans {
		if s == nil {
			continue
		}
		missed = false
		encodeFields(&enc.rows[i], &enc.arena, s, keyIDs)
		enc.ok[i] = !missed
	}
	e.encodedBytes.Store(int64(len(enc.arena) / len(spans)))
	return enc
}

// forgetKeys starts a new key epoch: rows encoded before it are encoded
// again by the writer, and encoders wait for the writer's next
// publishKeys.
func (w *writer) forgetKeys() {
	w.keyEpoch = keyEpochs.Add(1)
	w.keysChanged = true
	if w.e != nil {
		w.e.keys.Store(nil)
	}
}

// publishKeys hands the key ids the writer has committed to the encoders,
// after a transaction that added some.
func (w *writer) publishKeys() {
	if !w.keysChanged {
		return
	}
	w.keysChanged = false
	w.e.keys.Store(&keySnapshot{epoch: w.keyEpoch, ids: maps.Clone(w.keys)})
}
