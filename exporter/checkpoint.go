package exporter

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The WAL is copied into the file (checkpointed) on a second connection,
// off the writer's goroutine, so that the writer never waits for readers.
//
// SQLite starts the WAL over at the beginning of a write transaction when
// every frame in it has been copied into the file and no reader still
// reads from it; otherwise the transaction appends, and the WAL grows. The
// writer's own checkpoints, run after its commits, copy only what readers
// of old snapshots allow and never try again until the next commit, so
// with a viewer polling a busy file the WAL was rarely all copied when the
// next transaction began. A PASSIVE checkpoint takes no lock the writer
// or readers wait for: the checkpointer runs one after every commit and,
// while readers of old snapshots hold frames back, again every ckptRetry
// until everything is copied. When the writer's next transaction begins,
// the readers of then are those that started after the copy, which read
// the file alone, and SQLite starts the WAL over.

// ckptRetry is how soon the checkpointer tries again when readers of old
// snapshots kept it from copying the whole WAL.
const ckptRetry = 20 * time.Millisecond

// checkpointer copies the WAL of the writer's file into it. The writer
// starts one for each file it opens and stops it before it closes the
// file.
type checkpointer struct {
	db *sql.DB
	// mu is held during each of its checkpoints. SQLite runs one
	// checkpoint at a time and fails another at once, without waiting;
	// the writer's boundWAL takes mu so that its checkpoint does not fail
	// on this one's, which would look like a reader holding the WAL.
	mu     sync.Mutex
	cancel context.CancelFunc
	wake   chan struct{} // buffered, 1
	done   chan struct{} // closed when run has returned
}

// startCheckpointer starts checkpointing the file the writer has just
// opened. If the second connection cannot be had, the writer keeps
// checkpointing after its commits, as SQLite does by default.
func (w *writer) startCheckpointer() {
	if w.ckpt != nil {
		return
	}
	ctx := context.Background()
	db, err := schema.OpenCheckpoint(ctx, w.path)
	if err != nil {
		return
	}
	// The file at the path may have been replaced since the writer opened
	// its own: the checkpointer must check the same file's WAL.
	if fi, err := os.Stat(w.path); err != nil || w.maint.opened == nil || !os.SameFile(fi, w.maint.opened) {
		db.Close()
		return
	}
	if err := w.conn.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
		db.Close()
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &checkpointer{db: db, cancel: cancel, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.ckpt = c
	go c.run(ctx)
}

// stopCheckpointer stops the checkpointer and closes its connection. A
// checkpoint in progress is interrupted; what it copied stays copied.
func (w *writer) stopCheckpointer() {
	c := w.ckpt
	if c == nil {
		return
	}
	w.ckpt = nil
	c.cancel()
	<-c.done
	c.db.Close()
}

// kickCheckpointer asks the checkpointer to copy what the writer has just
// committed.
func (w *writer) kickCheckpointer() {
	if c := w.ckpt; c != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// run checkpoints once per kick, and again every ckptRetry while frames
// are left uncopied, until ctx is done.
func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-retry.C:
		}
		// busy is set when another checkpoint (the writer's bound on the
		// WAL, another process) holds the lock; log is the WAL's frames
		// and copied those now in the file.
		var busy, log, copied int64
		c.mu.Lock()
		err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
		c.mu.Unlock()
		if err == nil && (busy != 0 || copied < log) {
			retry.Reset(ckptRetry)
		}
	}
}
