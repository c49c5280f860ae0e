package exporter

import (
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel"
)

// maintenance is the state of maintain, owned by the writer goroutine.
type maintenance struct {
	// lastCheck is when the file was last checked and retention last
	// looked for work; lastWritten the written count at the last call.
	lastCheck   time.Time
	lastWritten int64
	// opened describes the file at path when it was opened, to notice it
	// being deleted or replaced; wal and shm its WAL and shared-memory
	// index, to tell them from those of a file put in its place.
	opened, wal, shm os.FileInfo
	// broken is set while the file vanished and could not be reopened:
	// the writer's connection is closed and every write fails.
	broken bool
	// saved is set once the retention in force is in the open file's meta.
	saved bool
	// backlog is set when the last retention step left work; trimming
	// while spans are deleted to bring the file under its size limit,
	// shrinking while its free pages are given back for it.
	backlog, trimming, shrinking bool
	// retentionFailing is set from a failed retention step's report until
	// a step succeeds, so that an episode is reported once.
	retentionFailing bool
	// walFailing is when boundWAL's checkpoints began to fail, in a row,
	// with the WAL past its bound (zero while they do not), walTried when
	// it last tried; walBlocked is set from the report of an episode, once
	// they have failed for a maintainEvery, until one finishes or the WAL
	// is back under its bound.
	walFailing, walTried time.Time
	walBlocked           bool
	// ckptOwed counts the spans committed since the checkpointer was last
	// asked for a checkpoint at once (checkpoint.go).
	ckptOwed int64
	// quiet is set while the writer fails for a reason other than a
	// vanished file: waking an idle writer would only make it retry, and
	// persist the failure count, between the application's own batches.
	quiet bool
}

// maintain runs on the writer goroutine between transactions: the place
// for work that must not stall ingest for more than one batch. About once
// a maintainEvery (an idle writer wakes that often) it checks
// that the file is still in place and looks for spans to delete; while a
// step leaves work behind, or the file and its WAL are over the size
// limit, it takes another step after every batch. After every batch it
// also bounds the WAL.
func (w *writer) maintain() {
	// The checkpointer copies what was just committed: at once when it
	// is much (ckptSpans), else soon; and after the deletes of retention
	// what they wrote, at once.
	m := &w.maint
	written := w.stats.written.Load()
	ingested := written - m.lastWritten
	m.lastWritten = written
	m.ckptOwed += ingested
	big := m.ckptOwed >= ckptSpans
	if big {
		m.ckptOwed = 0
	}
	w.kickCheckpointer(big)
	now := time.Now()
	due := now.Sub(m.lastCheck) >= w.cfg.maintainEvery
	if due {
		m.lastCheck = now
		w.watchFile()
	}
	m.quiet = w.failing && !m.broken
	if m.broken || w.failing {
		return
	}
	if !m.saved {
		if err := w.saveRetention(); err != nil {
			if !m.retentionFailing {
				m.retentionFailing = true
				otel.Handle(fmt.Errorf("lonelytrace exporter: %s: %w", w.path, err))
			}
			return
		}
		m.saved = true
	}
	// Before retention and after it, whose deletes are written to the WAL
	// too: a WAL at its bound holds either the commit or the deletes
	// beyond it, not both.
	w.boundWAL()
	if due || m.backlog || w.overSize() {
		w.retain(ingested)
		w.boundWAL()
		m.ckptOwed = 0
		w.kickCheckpointer(true)
	}
}

// reset starts the maintenance of the file the writer has just opened at
// path: it notes which files those are, and clears what concerned the
// file before (broken, saved, backlog, trimming, shrinking). The clocks and the
// retention failure episode carry over.
func (m *maintenance) reset(path string) {
	m.opened, _ = os.Stat(path)
	m.wal, _ = os.Stat(path + "-wal")
	m.shm, _ = os.Stat(path + "-shm")
	m.broken, m.saved, m.backlog, m.trimming, m.shrinking = false, false, false, false, false
}
