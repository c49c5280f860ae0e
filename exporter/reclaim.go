package exporter

import (
	"fmt"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

// Resources, scopes and attribute keys are stored once each and referred
// to by id. Spans of short-lived processes (each with its own
// service.instance.id) or of unique attribute keys add a row for nearly
// every span, so retention must take those rows with the spans, and the
// writer's caches of their ids must be bounded. The scheme, whole:
//
//   - Each row has a last_span (schema migration 3): at least the highest
//     spans.id of a span that refers to it. The span ids within a
//     transaction are not known before SQLite assigns them (the rows go in
//     by column group), so a transaction makes sure that every row its
//     spans refer to has a last_span of at least its own last span id
//     (markUsed). Rewriting the same rows after every transaction would
//     add their pages to every commit, so the writer marks them ahead and
//     remembers the marks it made (keyMarked, resourceMarked,
//     scopeMarked): a row marked far enough is not written again. A row it
//     adds gets, when it is inserted, a sixteenth of the span ids in the
//     file ahead, or one and a half of the last transaction when that is
//     more (markAs); a row used again, four transactions ahead, or that
//     when it is more. So a row used once (a process's own resource) is
//     kept up to a sixteenth of the file's spans, or a transaction and a
//     half, longer than needed; one used again up to four transactions
//     longer; and a row in steady use is written once in four
//     transactions at most. A failed
//     transaction forgets the marks with the other caches.
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

// markAhead bounds how far ahead of a transaction's first span id the
// writer marks rows, as a share of the span ids in the file (a shift),
// and at least minMarkAhead.
const (
	markAheadShift = 4
	minMarkAhead   = 64
)

// beginUse starts the marks of a transaction, whose use sets are empty;
// before is the last span id before it. It sets markBase and markAs.
func (w *writer) beginUse(before int64) error {
	var first int64
	if err := queryIntsArgs(w.firstSpan, []any{before + 1}, &first); err != nil {
		return fmt.Errorf("read the first span id: %w", err)
	}
	w.markBase = before
	// A transaction about as large as the last one marks the rows it adds
	// when it inserts them, and need not write them again.
	w.markAs = before + max((before+1-first)>>markAheadShift, w.lastTxn+w.lastTxn/2, minMarkAhead)
	for _, m := range []map[int64]int64{w.keyMarked, w.resourceMarked, w.scopeMarked} {
		if len(m) >= 2*maxCachedKeys {
			clear(m) // they only save writes
		}
	}
	return nil
}

// marked notes that the row id of marks was given last_span markAs.
func (w *writer) marked(marks map[int64]int64, id int64) {
	marks[id] = w.markAs
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

// markUsedSQL marks the rows of table, of the ids of the JSON array ?2,
// used by spans up to ?1.
func markUsedSQL(table string) string {
	// max: another writer of the file may have marked a row further.
	return "UPDATE " + table + " SET last_span = max(last_span, ?1) WHERE id IN (SELECT value FROM json_each(?2))"
}

// markRows makes the last_span of every row the transaction's spans refer
// to at least last, its last span id. A row it added is marked to last
// when its mark falls short; a row used again is marked ahead (see
// above).
func (w *writer) markRows(last int64) error {
	w.lastTxn = last - w.markBase
	again := last + max(w.markAs-w.markBase, 4*w.lastTxn)
	for _, t := range []struct {
		table string
		ids   map[int64]struct{}
		marks map[int64]int64
		stmt  *sqlitec.Stmt
	}{{"attribute_keys", w.keyUse, w.keyMarked, w.markUsed[0]}, {"resources", w.resourceUse, w.resourceMarked, w.markUsed[1]}, {"scopes", w.scopeUse, w.scopeMarked, w.markUsed[2]}} {
		var added, used []int64
		for id := range t.ids {
			switch m := t.marks[id]; {
			case m >= last:
			case m == w.markAs:
				added = append(added, id)
			default:
				used = append(used, id)
			}
		}
		for _, g := range []struct {
			ids []int64
			to  int64
		}{{added, last}, {used, again}} {
			if len(g.ids) == 0 {
				continue
			}
			if err := execStmt(t.stmt, g.to, schema.IDList(g.ids)); err != nil {
				return fmt.Errorf("mark the %s used: %w", t.table, err)
			}
			for _, id := range g.ids {
				t.marks[id] = g.to
			}
		}
	}
	return nil
}

// reclaimed are the rows a retention step took.
type reclaimed struct {
	keys              map[string]int64 // only those the writer had cached
	resources, scopes map[int64]struct{}
}

// reclaimTx deletes, in retention's transaction, the resources, scopes
// and attribute keys no span left refers to; next is the span id after
// the last one deleted, the floor when no span is left.
func (w *writer) reclaimTx(next int64) (reclaimed, error) {
	var r reclaimed
	var floor int64
	err := w.conn.Query("SELECT coalesce((SELECT min(id) FROM spans), ?)", []any{next}, func(s *sqlitec.Stmt) error {
		floor = s.Int64(0)
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("read the first span id: %w", err)
	}
	err = w.conn.Query("DELETE FROM attribute_keys WHERE last_span < ?1 AND id < (SELECT max(id) FROM attribute_keys) RETURNING id, key", []any{floor}, func(s *sqlitec.Stmt) error {
		id, key := s.Int64(0), s.Bytes(1)
		// Only those the writer has cached need forgetting.
		if cached, ok := w.keys[string(key)]; ok && cached == id {
			if r.keys == nil {
				r.keys = make(map[string]int64)
			}
			r.keys[string(key)] = id
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("reclaim attribute keys: %w", err)
	}
	if r.resources, err = w.reclaimIDs("resources", floor); err != nil {
		return r, err
	}
	if r.scopes, err = w.reclaimIDs("scopes", floor); err != nil {
		return r, err
	}
	return r, nil
}

// reclaimIDs deletes the rows of table, resources or scopes, whose
// last_span is below floor, and returns their ids.
func (w *writer) reclaimIDs(table string, floor int64) (map[int64]struct{}, error) {
	var ids map[int64]struct{}
	err := w.conn.Query("DELETE FROM "+table+" WHERE last_span < ?1 AND id < (SELECT max(id) FROM "+table+") RETURNING id", []any{floor}, func(s *sqlitec.Stmt) error {
		if ids == nil {
			ids = make(map[int64]struct{})
		}
		ids[s.Int64(0)] = struct{}{}
		return nil
	})
	if err != nil {
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
		delete(w.keyMarked, id)
	}
	if len(r.keys) > 0 {
		w.forgetKeys()
	}
	for id := range r.resources {
		delete(w.resourceMarked, id)
	}
	for id := range r.scopes {
		delete(w.scopeMarked, id)
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
