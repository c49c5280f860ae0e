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

// ckptEvery and ckptSpans set the checkpoints' cadence. After a commit of
// ckptSpans or more since the last checkpoint, or retention's deletes,
// the checkpointer runs one at once; after smaller commits, at most once
// a ckptEvery. A checkpoint syncs the WAL and the file and copies the
// pages of every commit since the last: after each of many small commits
// (collect's, one a request, each waited for) that was a third of what
// they cost, and most of the pages it copied (the last page of every
// table and index) the next commit wrote again. 4,096 spans are about
// 1 MiB of WAL; a large commit is still copied at once, so that the WAL
// starts over at the next transaction and a disk filling up holds the
// rows in the file rather than in the WAL.
const (
	ckptEvery = 50 * time.Millisecond
	ckptSpans = 4096
)

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
	// wake asks for a checkpoint now, soon for one within ckptEvery of
	// the last; both are buffered, 1.
	wake, soon chan struct{}
	done       chan struct{} // closed when run has returned
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
	c := &checkpointer{db: db, cancel: cancel, wake: make(chan struct{}, 1), soon: make(chan struct{}, 1), done: make(chan struct{})}
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
// committed: at once when now is set, else within ckptEvery of its last
// checkpoint.
func (w *writer) kickCheckpointer(now bool) {
	c := w.ckpt
	if c == nil {
		return
	}
	ch := c.soon
	if now {
		ch = c.wake
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run checkpoints once per kick (those that may wait, at most once a
// ckptEvery), and again every ckptRetry while frames are left uncopied,
// until ctx is done.
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
	// last is when the last checkpoint ended; armed is set while retry
	// is set to run one.
	var last time.Time
	armed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-c.soon:
			if wait := ckptEvery - time.Since(last); wait > 0 {
				if !armed {
					armed = true
					retry.Reset(wait)
				}
				continue
			}
		case <-retry.C:
		}
		retry.Stop()
		armed = false
		// busy is set when another checkpoint (the writer's bound on the
		// WAL, another process) holds the lock; log is the WAL's frames
		// and copied those now in the file.
		var busy, log, copied int64
		c.mu.Lock()
		err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
		c.mu.Unlock()
		last = time.Now()
		if err == nil && (busy != 0 || copied < log) {
			armed = true
			retry.Reset(ckptRetry)
		}
	}
}
