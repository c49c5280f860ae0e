package exporter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.opentelemetry.io/otel"

	"github.com/lonelytrace/lonelytrace/schema"
)

// watchFile checks that the file at the exporter's path is still the one
// the writer has open. When it was deleted, or replaced by a rename, the
// writer's spans would go to a file nobody can read: the writer closes it
// and opens (or creates) the one now at the path. Each episode is
// reported once; while reopening fails, it is retried at every check and
// the writes fail and are counted.
func (w *writer) watchFile() {
	m := &w.maint
	fi, err := os.Stat(w.path)
	if !m.broken {
		switch {
		case err == nil && m.opened == nil:
			m.opened = fi
			return
		case err == nil && os.SameFile(fi, m.opened):
			return
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			// The folder may be unreadable for a moment; nothing says the
			// file changed, so keep writing to it.
			return
		}
	}
	what := "was replaced"
	if err != nil {
		what = "was deleted"
	}
	first := !m.broken
	if rerr := w.reopen(err != nil); rerr != nil {
		if first {
			otel.Handle(fmt.Errorf("lonelytrace exporter: %s %s while open, and opening a new one failed (retried every %v; spans are counted as failed until then): %w", w.path, what, w.cfg.maintainEvery, rerr))
		}
		return
	}
	if first {
		otel.Handle(fmt.Errorf("lonelytrace exporter: %s %s while open; writing to the file now at that path (what was written to the old one in the last %v, and what had not reached it from its WAL, went with it)", w.path, what, w.cfg.maintainEvery))
	} else {
		otel.Handle(fmt.Errorf("lonelytrace exporter: %s could be opened again", w.path))
	}
}

// reopen closes the writer's file and opens the one at path afresh
// (writer.open says what that resets), creating it when gone is set. It
// closes first, the checkpointer's connection too: a connection left open
// on the old file would share its WAL and shared-memory index, found by
// name, with the new file, and corrupt it. On failure the writer is left
// with its closed connection, on which every write fails cleanly, and
// m.broken set.
func (w *writer) reopen(gone bool) error {
	m := &w.maint
	if !m.broken {
		_ = w.closeFile() // the file is gone from under it
		m.broken = true
	}
	// SQLite leaves the WAL and index of a file that was renamed or
	// unlinked under it, unchecked, beside the path: opened with the file
	// now there, they would be taken for its own and corrupt it. Those of
	// a file put in place with its own WAL are left alone.
	for _, f := range []struct {
		suffix string
		ours   os.FileInfo
	}{{"-wal", m.wal}, {"-shm", m.shm}} {
		fi, err := os.Stat(w.path + f.suffix)
		if err != nil || !gone && (f.ours == nil || !os.SameFile(fi, f.ours)) {
			continue
		}
		if err := os.Remove(w.path + f.suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the old file's %s%s: %w", w.path, f.suffix, err)
		}
	}
	db, err := schema.OpenWrite(context.Background(), w.path, w.cfg.busyTimeout)
	if err != nil {
		return err
	}
	if err := w.open(db); err != nil {
		db.Close()
		return err
	}
	return nil
}
