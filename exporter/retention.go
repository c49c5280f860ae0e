package exporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/lonelytrace/lonelytrace/internal/sqlitec"
	"github.com/lonelytrace/lonelytrace/schema"
)

const (
	// defaultRetentionStep is the fewest spans one retention step deletes:
	// a few milliseconds of work, so that a step between two batches is
	// never felt.
	defaultRetentionStep = 2000
	// maxRetentionStep bounds a step that keeps pace with a large batch.
	maxRetentionStep = 1 << 15
	// vacuumStepPages is the most free pages one step gives back to the
	// file system (4 MiB with 4 KiB pages).
	vacuumStepPages = 1024
	// idleRetention is how long maintain keeps deleting while no batch
	// waits: a backlog (after a restart with a smaller limit) drains fast
	// when the application is quiet.
	idleRetention = 50 * time.Millisecond
	// lowWater is the share of the size limit retention deletes down to
	// once over it, so that it runs in bursts, not after every batch.
	lowWater = 0.95
	// minMaxSize is the smallest size limit WithMaxSize accepts.
	minMaxSize = 1 << 20
	// maxWAL and minWAL bound walBound (config.go): the WAL of a file
	// without a size limit may reach maxWAL before boundWAL truncates it.
	maxWAL = 64 << 20
	minWAL = 256 << 10
	// walWait is how long boundWAL waits for readers of old snapshots,
	// holding up the writer. The checkpointer (checkpoint.go) keeps the
	// WAL copied into the file off the writer's goroutine, so that SQLite
	// starts it over at the writer's next transaction unless a reader
	// still reads from it; boundWAL is the fallback for readers that
	// overlap for long. A wait of a second stalled the writer past what
	// its queue holds at 20,000 spans/s; 100 ms is a few batches.
	walWait = 100 * time.Millisecond
	// walRetry is how soon boundWAL tries again after readers kept its
	// checkpoint from finishing: each try may hold up the writer for
	// walWait.
	walRetry = 250 * time.Millisecond
)

// retain runs retention steps: one at least, more while no batch waits,
// none while the writer is failing (a step would only fail too, and would
// wait on a lock as long as a batch does). ingested is the number of
// spans committed since the last call: a step deletes at least twice as
// many, so that retention keeps pace with any ingest rate while taking
// about as long as the batch it follows.
func (w *writer) retain(ingested int64) {
	m := &w.maint
	if w.cfg.maxAge == 0 && w.cfg.maxSize == 0 {
		return
	}
	if w.failing || m.broken {
		m.backlog = false
		return
	}
	limit := int(min(max(int64(w.cfg.retentionStep), 2*ingested), maxRetentionStep))
	deadline := time.Now().Add(idleRetention)
	for {
		more, err := w.retentionStep(limit)
		if err != nil {
			m.backlog = false
			if !m.retentionFailing {
				m.retentionFailing = true
				otel.Handle(fmt.Errorf("lonelytrace exporter: retention on %s failed (retried every %v, further failures are not reported): %w", w.path, w.cfg.maintainEvery, err))
			}
			return
		}
		m.retentionFailing = false
		m.backlog = more
		if !more || len(w.jobs) > 0 || time.Now().After(deadline) {
			return
		}
		limit = w.cfg.retentionStep
	}
}

// retentionStep deletes up to limit of the oldest spans that are too old,
// or, while the file is over its size limit, the oldest spans whatever
// their age; then the traces no span refers to any more; then it gives up
// to vacuumStepPages free pages back. more reports that another step has
// work to do.
func (w *writer) retentionStep(limit int) (more bool, err error) {
	m := &w.maint
	used, free, err := w.pages()
	if err != nil {
		return false, err
	}
	counted := used + w.walShare()
	if w.cfg.maxSize > 0 {
		switch {
		case counted > w.cfg.maxSize:
			m.trimming = true
		case float64(counted) <= lowWater*float64(w.cfg.maxSize):
			m.trimming = false
		}
	}
	cutoff := int64(math.MinInt64)
	if m.trimming {
		cutoff = math.MaxInt64
	} else if w.cfg.maxAge > 0 {
		// Age counts back from the newest span stored, or from now when
		// that is later: a file whose process was stopped for a month, or
		// that holds replayed history, keeps its last days until new spans
		// arrive, and a clock that jumps ahead does not empty the file.
		newest := time.Now().UnixNano()
		err := w.conn.Query("SELECT start_ns FROM spans ORDER BY id DESC LIMIT 1", nil, func(s *sqlitec.Stmt) error {
			if s.Type(0) != sqlitec.Null {
				newest = min(newest, s.Int64(0))
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("read newest span: %w", err)
		}
		cutoff = newest - int64(w.cfg.maxAge)
	}
	if m.trimming {
		// Delete about the excess, at the file's mean bytes per span, so
		// that a small limit is not overshot by a whole step.
		var lo, hi int64
		found := false
		err := w.conn.Query("SELECT (SELECT id FROM spans ORDER BY id LIMIT 1), (SELECT id FROM spans ORDER BY id DESC LIMIT 1)", nil, func(s *sqlitec.Stmt) error {
			lo, hi, found = s.Int64(0), s.Int64(1), s.Type(0) != sqlitec.Null
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("read span ids: %w", err)
		}
		if found {
			perSpan := max(used/(hi-lo+1), 1)
			excess := counted - int64(lowWater*float64(w.cfg.maxSize))
			limit = int(min(int64(limit), excess/perSpan+1))
		}
	}
	deleted := 0
	if cutoff != math.MinInt64 {
		if deleted, err = w.deleteOldest(limit, cutoff); err != nil {
			return false, err
		}
	}
	// Freed pages are given back when they are a tenth of the file, or
	// the file and the WAL's bound are a sixteenth over the size limit
	// (shrinking, until they are back within it): under steady ingest new
	// rows reuse the pages that retention frees, down to 95 % of the
	// limit, at once, and moving pages to shrink the file costs more than
	// the deletes and is written to the WAL. Only after a step that
	// deleted, and the steps after it while shrinking: giving back pages
	// free for other reasons would also make room under a full disk (or
	// max_page_count) behind the writer's back. A step moves at most a
	// quarter of the WAL's bound.
	pageSize := w.pageSize()
	total := used + free*pageSize
	if limit := w.cfg.maxSize; limit > 0 {
		if deleted > 0 && total+w.walShare() > limit+limit/16 {
			m.shrinking = true
		}
		if free == 0 || total+w.walShare() <= limit {
			m.shrinking = false
		}
	}
	if free > 0 && (m.shrinking || deleted > 0 && free*10 > total/pageSize) {
		// Each page is one result row; stepping through them all is what
		// makes SQLite free them.
		step := min(vacuumStepPages, max(w.cfg.walLimit/4/pageSize, 1))
		if err := w.conn.Query(fmt.Sprintf("PRAGMA incremental_vacuum(%d)", step), nil, nil); err != nil {
			return false, fmt.Errorf("incremental vacuum: %w", err)
		}
	}
	// The age rule looks at the oldest limit spans in insertion order; a
	// step that deleted some of them may have left more behind.
	return deleted > 0 || m.shrinking, nil
}

// overSize reports whether the file's pages in use and its WAL together
// are past the size limit: checked after every commit, as a second of
// ingest flat out can be more than a small limit.
//
// The pages in use are those the last transaction read before its COMMIT
// when it succeeded (txnState.used), which saves a read transaction per
// commit, a third of what the check cost; else they are read now.
func (w *writer) overSize() bool {
	if !w.sizeChecked() {
		return false
	}
	used, known := w.used, w.usedKnown
	w.usedKnown = false // one transaction's reading answers one check
	if !known {
		var err error
		if used, _, err = w.pages(); err != nil {
			return false
		}
	}
	return used+w.walShare() > w.cfg.maxSize
}

// sizeChecked reports whether overSize checks the size limit now.
func (w *writer) sizeChecked() bool {
	return w.cfg.maxSize != 0 && !w.maint.trimming
}

// walShare is what the size limit counts of the WAL: its bound, whatever
// its size now. The WAL starts over, empty, after every checkpoint that
// copies it all, and grows back within a few transactions, so its size
// of the moment says little of the room it needs; and a WAL past its
// bound is one a reader holds (see boundWAL), which deleting spans would
// not shrink.
func (w *writer) walShare() int64 {
	if w.cfg.maxSize == 0 {
		return 0
	}
	return w.cfg.walLimit
}

// pages returns the bytes the file's pages in use take, and how many
// free pages it holds.
func (w *writer) pages() (used int64, free int64, err error) {
	var count, pageSize int64
	for _, q := range []struct {
		stmt *sqlitec.Stmt
		dst  *int64
	}{{w.pageCount, &count}, {w.freeCount, &free}, {w.pageBytes, &pageSize}} {
		if err = queryInts(q.stmt, q.dst); err != nil {
			return 0, 0, fmt.Errorf("read page counts: %w", err)
		}
	}
	return (count - free) * pageSize, free, nil
}

// deleteOldest deletes, among the limit spans inserted first, those that
// started before cutoff, and the traces left without spans, in one
// transaction. Insertion order follows time closely enough, and the scan
// by rowid needs no index on start_ns.
func (w *writer) deleteOldest(limit int, cutoff int64) (deleted int, err error) {
	var forget []trace.TraceID
	var rec reclaimed
	err = w.immediateTx(func() (err error) {
		deleted, forget, rec, err = w.deleteOldestTx(limit, cutoff)
		return err
	})
	if err != nil {
		return 0, err
	}
	// Only once committed: the writer must not reuse the traces.id of a
	// deleted trace row for new spans of that trace.
	for _, id := range forget {
		delete(w.traces, id)
		delete(w.oldTraces, id)
	}
	w.forgetReclaimed(rec)
	return deleted, nil
}

// deleteOldestTx is deleteOldest's transaction: it returns the spans
// deleted, the trace ids of the traces deleted with them, and the
// resources, scopes and attribute keys reclaimed (reclaim.go).
func (w *writer) deleteOldestTx(limit int, cutoff int64) (deleted int, forget []trace.TraceID, rec reclaimed, err error) {
	seen := make(map[int64]struct{})
	var refs []int64
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	err = w.conn.Query("DELETE FROM spans WHERE id IN (SELECT id FROM spans ORDER BY id LIMIT ?) AND start_ns < ? RETURNING id, trace", []any{limit, cutoff}, func(s *sqlitec.Stmt) error {
		id, ref := s.Int64(0), s.Int64(1)
		deleted++
		lo, hi = min(lo, id), max(hi, id)
		if _, ok := seen[ref]; !ok {
			seen[ref] = struct{}{}
			refs = append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return 0, nil, rec, fmt.Errorf("delete spans: %w", err)
	}
	if deleted == 0 {
		return 0, nil, rec, nil
	}
	list, _ := json.Marshal(refs)
	err = w.conn.Query(`DELETE FROM traces WHERE id IN (SELECT value FROM json_each(?))
		AND NOT EXISTS (SELECT 1 FROM spans WHERE spans.trace = traces.id) RETURNING trace_id`, []any{string(list)}, func(s *sqlitec.Stmt) error {
		var id trace.TraceID
		copy(id[:], s.Bytes(0))
		forget = append(forget, id)
		return nil
	})
	if err != nil {
		return 0, nil, rec, fmt.Errorf("delete traces: %w", err)
	}
	if err := w.fixBatches(lo, hi); err != nil {
		return 0, nil, rec, err
	}
	if rec, err = w.reclaimTx(hi + 1); err != nil {
		return 0, nil, rec, err
	}
	if err := execStmt(w.addMeta, schema.MetaRetentionDeleted, deleted); err != nil {
		return 0, nil, rec, fmt.Errorf("count deleted spans: %w", err)
	}
	return deleted, forget, rec, nil
}

// saveRetention records the retention in force in the file's meta table,
// for the viewer, and bounds the WAL. It runs once per opened file.
func (w *writer) saveRetention() error {
	if err := w.conn.Exec(fmt.Sprintf("PRAGMA journal_size_limit = %d", w.cfg.walLimit)); err != nil {
		return fmt.Errorf("bound the WAL: %w", err)
	}
	err := w.conn.ExecArgs(`INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		schema.MetaRetentionMaxAge, int64(w.cfg.maxAge), schema.MetaRetentionMaxSize, w.cfg.maxSize)
	if err != nil {
		return fmt.Errorf("record retention: %w", err)
	}
	return nil
}

// fixBatches brings the rows of the batches table that cover span ids
// lo..hi back in line with the spans left: their
// count and range of starts recomputed, and those left empty deleted. The
// viewer counts spans and finds the oldest from that table. Retention
// deletes from the oldest end, so the batches concerned are the first
// ones in id order, and the scan stops at the first batch past hi.
func (w *writer) fixBatches(lo, hi int64) error {
	var ids []int64
	err := w.conn.Query("SELECT id, first_span, last_span FROM batches ORDER BY id", nil, func(s *sqlitec.Stmt) error {
		id, first, last := s.Int64(0), s.Int64(1), s.Int64(2)
		if first > hi {
			return errPastRange
		}
		if last >= lo {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPastRange) {
		return fmt.Errorf("read batches: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	list, _ := json.Marshal(ids)
	if err := w.conn.ExecArgs(`UPDATE batches SET
			spans = (SELECT count(*) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span),
			min_start_ns = coalesce((SELECT min(start_ns) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span), min_start_ns),
			max_start_ns = coalesce((SELECT max(start_ns) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span), max_start_ns)
		WHERE id IN (SELECT value FROM json_each(?1))`, string(list)); err != nil {
		return fmt.Errorf("update batches: %w", err)
	}
	if err := w.conn.ExecArgs("DELETE FROM batches WHERE id IN (SELECT value FROM json_each(?1)) AND spans = 0", string(list)); err != nil {
		return fmt.Errorf("delete batches: %w", err)
	}
	return nil
}

// errPastRange ends fixBatches' scan at the first batch past the spans
// deleted.
var errPastRange = errors.New("past the range")

// boundWAL checkpoints the WAL and truncates it once it has grown past
// walLimit. SQLite can only start the WAL over at a moment when no reader
// still reads from it; with readers that overlap (a viewer polling a busy
// file, answers that take longer than the polls are apart) there may be
// no such moment for hours, and the WAL grows without bound. This waits
// up to walWait for those readers (new readers are not held up). With the
// checkpointer running, the WAL is already copied and the wait is all it
// costs. It looks after every commit, as the WAL's bound under a small
// size limit is a few transactions; while readers keep the checkpoint
// from finishing, it tries again every walRetry, and once they have kept
// it from finishing for a maintainEvery the episode is reported once
// through otel.Handle and counted in the file's meta
// (MetaCheckpointsBlocked).
func (w *writer) boundWAL() {
	m := &w.maint
	fi, err := os.Stat(w.path + "-wal")
	if err != nil || fi.Size() <= w.cfg.walLimit {
		w.walBlockedEnds()
		return
	}
	now := time.Now()
	if !m.walFailing.IsZero() && now.Sub(m.walTried) < min(walRetry, w.cfg.maintainEvery) {
		return
	}
	m.walTried = now
	if err := w.conn.Exec(fmt.Sprintf("PRAGMA busy_timeout = %d", walWait.Milliseconds())); err != nil {
		return
	}
	// The result is busy (the lock was held past walWait), the WAL's
	// frames and those copied: a checkpoint that finished has copied them
	// all and emptied the WAL.
	var busy, frames, copied int64
	if c := w.ckpt; c != nil {
		c.mu.Lock()
	}
	err = w.conn.Query("PRAGMA wal_checkpoint(TRUNCATE)", nil, func(s *sqlitec.Stmt) error {
		busy, frames, copied = s.Int64(0), s.Int64(1), s.Int64(2)
		return nil
	})
	if c := w.ckpt; c != nil {
		c.mu.Unlock()
	}
	_ = w.conn.Exec(fmt.Sprintf("PRAGMA busy_timeout = %d", w.cfg.busyTimeout.Milliseconds()))
	if err == nil && busy == 0 && copied >= frames {
		w.walBlockedEnds()
		return
	}
	// A failure may be a reader that took longer than walWait, as a
	// viewer's answer may; failures for a maintainEvery are an episode.
	if m.walFailing.IsZero() {
		m.walFailing = now
	}
	if m.walBlocked || now.Sub(m.walFailing) < w.cfg.maintainEvery {
		return
	}
	m.walBlocked = true
	w.checkpointsBlocked++
	cause := fmt.Errorf("%d of %d frames copied, busy %d", copied, frames, busy)
	if err != nil {
		cause = err
	}
	otel.Handle(fmt.Errorf("lonelytrace exporter: checkpoint of %s cannot finish, a reader (or another process) holds its WAL (%.1f MiB, bound %.1f MiB): the WAL grows until it lets go (not reported again until a checkpoint finishes): %w",
		w.path, float64(fi.Size())/(1<<20), float64(w.cfg.walLimit)/(1<<20), cause))
}

// walBlockedEnds ends an episode of blocked checkpoints, if one is on.
func (w *writer) walBlockedEnds() {
	w.maint.walFailing = time.Time{}
	if !w.maint.walBlocked {
		return
	}
	w.maint.walBlocked = false
	otel.Handle(fmt.Errorf("lonelytrace exporter: checkpoints of %s finish again (%d episodes blocked by readers in all)", w.path, w.checkpointsBlocked))
}

// pageSize returns the file's page size.
func (w *writer) pageSize() int64 {
	var n int64
	err := w.conn.Query("PRAGMA page_size", nil, func(s *sqlitec.Stmt) error {
		n = s.Int64(0)
		return nil
	})
	if err != nil || n <= 0 {
		return 4096
	}
	return n
}
