package exporter

import (
	"context"
	"fmt"
	"strconv"
)

// Resources, scopes and attribute keys are stored once each and referred
// to by id. Spans of short-lived processes (each with its own
// service.instance.id) or of unique attribute keys add a row for nearly
// every span, so retention must take those rows with the spans, and the
// writer's caches of their ids must be bounded. The scheme, whole:
//
//   - Each row has a last_span (schema migration 3): at least the highest
//     spans.id of a span that refers to it. A transaction sets it to its
//     last span id for every row its spans refer to (markUsed), which is
//     a few rows for most transactions; the span ids within one are not
//     known before SQLite assigns them, since the rows go in by column
//     group.
//   - Retention deletes the rows whose last_span is below every span id
//     left (reclaimTx), in the transaction that deletes the spans. It
//     deletes from the oldest spans, so a row is taken once the last
//     transaction that used it is gone.
//   - The row of a table's highest id is never taken: SQLite gives a new
//     row the highest id plus one, so an id is never handed out again,
//     and a reader (the viewer's schema.Reader) that still maps an id to
//     its key, resource or scope maps it rightly for as long as it lives.
//   - After the commit the writer forgets the ids taken (forgetReclaimed).
//     Rows encoded ahead may hold a key id taken: a key taken from the
//     writer's cache starts a new key epoch, so those rows are encoded
//     again (encode.go). Within an epoch the cache only grows, so every
//     key id published in it is in the cache.
//   - The caches are bounded (maxCached*): one that is full starts over,
//     the key cache with a new epoch. A resource or scope not cached is
//     found by its unique index; a key by its own.

// The bounds of the writer's id caches. Past them a cache starts over:
// a workload that needs more ids than these at once looks ids up in the
// file's indexes, which costs a lookup per span, instead of holding them.
const (
	maxCachedKeys      = 1 << 14
	maxCachedResources = 1 << 12
	maxCachedScopes    = 1 << 12
)

// clearUse starts the rows used by a transaction over.
func (w *writer) clearUse() {
	clear(w.keyUse)
	clear(w.resourceUse)
	clear(w.scopeUse)
	w.lastResource, w.lastScope = 0, 0
}

// useResourceScope notes that a span of the transaction refers to the
// resource and scope of ids resID and scopeID. Most spans have those of
// the span before.
func (w *writer) useResourceScope(resID, scopeID int64) {
	if resID != w.lastResource {
		w.resourceUse[resID] = struct{}{}
		w.lastResource = resID
	}
	if scopeID != w.lastScope {
		w.scopeUse[scopeID] = struct{}{}
		w.lastScope = scopeID
	}
}

// markUsed sets the last_span of every row the transaction's spans refer
// to to last, its last span id.
func (w *writer) markUsed(ctx context.Context, last int64) error {
	for _, t := range []struct {
		table string
		ids   map[int64]struct{}
	}{{"attribute_keys", w.keyUse}, {"resources", w.resourceUse}, {"scopes", w.scopeUse}} {
		if len(t.ids) == 0 {
			continue
		}
		if _, err := w.conn.ExecContext(ctx, "UPDATE "+t.table+" SET last_span = ?1 WHERE id IN (SELECT value FROM json_each(?2))",
			last, idList(t.ids)); err != nil {
			return fmt.Errorf("mark the %s used: %w", t.table, err)
		}
	}
	return nil
}

// idList returns ids as a JSON array.
func idList(ids map[int64]struct{}) string {
	b := make([]byte, 0, 2+8*len(ids))
	b = append(b, '[')
	for id := range ids {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// reclaimed are the rows a retention step took.
type reclaimed struct {
	keys              map[string]int64 // only those the writer had cached
	resources, scopes map[int64]struct{}
}

// reclaimTx deletes, in retention's transaction, the resources, scopes
// and attribute keys no span left refers to; next is the span id after
// the last one deleted, the floor when no span is left.
func (w *writer) reclaimTx(ctx context.Context, next int64) (reclaimed, error) {
	var r reclaimed
	var floor int64
	if err := w.conn.QueryRowContext(ctx, "SELECT coalesce((SELECT min(id) FROM spans), ?)", next).Scan(&floor); err != nil {
		return r, fmt.Errorf("read the first span id: %w", err)
	}
	rows, err := w.conn.QueryContext(ctx, "DELETE FROM attribute_keys WHERE last_span < ?1 AND id < (SELECT max(id) FROM attribute_keys) RETURNING id, key", floor)
	if err != nil {
		return r, fmt.Errorf("reclaim attribute keys: %w", err)
	}
	for rows.Next() {
		var id int64
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			rows.Close()
			return r, fmt.Errorf("reclaim attribute keys: %w", err)
		}
		// Only those the writer has cached need forgetting.
		if w.keys[key] == id {
			if r.keys == nil {
				r.keys = make(map[string]int64)
			}
			r.keys[key] = id
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("reclaim attribute keys: %w", err)
	}
	if r.resources, err = w.reclaimIDs(ctx, "resources", floor); err != nil {
		return r, err
	}
	if r.scopes, err = w.reclaimIDs(ctx, "scopes", floor); err != nil {
		return r, err
	}
	return r, nil
}

// reclaimIDs deletes the rows of table, resources or scopes, whose
// last_span is below floor, and returns their ids.
func (w *writer) reclaimIDs(ctx context.Context, table string, floor int64) (map[int64]struct{}, error) {
	rows, err := w.conn.QueryContext(ctx, "DELETE FROM "+table+" WHERE last_span < ?1 AND id < (SELECT max(id) FROM "+table+") RETURNING id", floor)
	if err != nil {
		return nil, fmt.Errorf("reclaim %s: %w", table, err)
	}
	defer rows.Close()
	var ids map[int64]struct{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("reclaim %s: %w", table, err)
		}
		if ids == nil {
			ids = make(map[int64]struct{})
		}
		ids[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reclaim %s: %w", table, err)
	}
	return ids, nil
}

// forgetReclaimed takes the rows of r, now committed, out of the
// writer's caches. A key taken out starts a new key epoch: encoders may
// hold its id in the snapshot they encode with.
func (w *writer) forgetReclaimed(r reclaimed) {
	for key, id := range r.keys {
		if w.keys[key] == id {
			delete(w.keys, key)
		}
	}
	if len(r.keys) > 0 {
		w.forgetKeys()
	}
	if len(r.resources) > 0 {
		for res, id := range w.resources {
			if _, ok := r.resources[id]; ok {
				delete(w.resources, res)
			}
		}
	}
	if len(r.scopes) > 0 {
		for s, id := range w.scopes {
			if _, ok := r.scopes[id]; ok {
				delete(w.scopes, s)
			}
		}
	}
}

// dropKeyCache empties the key cache, which is full, and starts a new
// key epoch: within an epoch the cache holds every key id published in
// it, which forgetReclaimed relies on.
func (w *writer) dropKeyCache() {
	clear(w.keys)
	w.forgetKeys()
}
