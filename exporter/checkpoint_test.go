package exporter_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
)

func walSize(path string) int64 {
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// TestCheckpointer_WALStartsOver commits flush after flush, with a reader
// taking short snapshots all along, as a polling viewer does. The writer
// runs no checkpoint of its own: the checkpointer must copy each commit
// into the file soon enough that SQLite starts the WAL over at the next
// transaction, so that the WAL stays a small part of what was written.
func TestCheckpointer_WALStartsOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	e := mustNew(t, path)
	ctx := context.Background()
	if err := e.ExportSpans(ctx, spans(10)); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	db := mustOpenRead(t, path)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			var n int64
			db.QueryRow("SELECT count(*) FROM batches").Scan(&n)
		}
	}()
	var walMax int64
	rounds, size := 40, 1000
	if raceEnabled {
		rounds, size = 20, 500
	}
	for range rounds {
		if err := e.ExportSpans(ctx, spans(size)); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		// The checkpointer runs after every commit; a busy machine (the
		// whole suite in parallel, the race detector) may keep it off the
		// CPU for a while, which is not what this test is about.
		time.Sleep(50 * time.Millisecond)
		walMax = max(walMax, walSize(path))
	}
	close(stop)
	<-stopped
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d flushes of %d spans: file %d bytes, WAL at most %d bytes", rounds, size, fi.Size(), walMax)
	// With it, the WAL holds about two transactions (2.7 MB beside a 6 MB
	// file of 16 KiB pages); without it, the reader kept the writer's own
	// checkpoints from copying everything and the WAL grew to three times
	// the file.
	if walMax > fi.Size() {
		t.Errorf("WAL reached %d bytes beside a file of %d; want less (it should start over)", walMax, fi.Size())
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := walSize(path); n != 0 {
		t.Errorf("WAL after Shutdown = %d bytes; want 0", n)
	}
	if n := otlptest.StoredSpans(t, path); n != 10+rounds*size {
		t.Errorf("rows = %d; want %d", n, 10+rounds*size)
	}
	checkConsistent(t, path)
}

// TestCheckpointer_StuckReader holds a read transaction open while the
// writer commits: SQLite cannot start the WAL over, and it grows past its
// limit. The writer must wait for the reader only briefly each time it
// tries to bound the WAL, and once the reader is gone the WAL must come
// back under its limit. The episode is reported once when it starts and
// once when it ends, and counted in the file.
func TestCheckpointer_StuckReader(t *testing.T) {
	const limit = 1 << 20
	path := filepath.Join(t.TempDir(), "t.db")
	h := collectHandled(t)
	e := mustNew(t, path, exporter.WithWALLimit(limit), exporter.WithMaintainEvery(20*time.Millisecond))
	ctx := context.Background()
	flush := func(n int) time.Duration {
		t.Helper()
		began := time.Now()
		if err := e.ExportSpans(ctx, spans(n)); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		return time.Since(began)
	}
	flush(10)
	db := mustOpenRead(t, path)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM spans").Scan(&n); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	rounds := 30
	if raceEnabled {
		rounds = 15
	}
	for range rounds {
		worst = max(worst, flush(1000))
		time.Sleep(20 * time.Millisecond)
	}
	grown := walSize(path)
	t.Logf("with a reader holding its snapshot: WAL %d bytes, worst flush %v", grown, worst)
	if grown <= limit {
		t.Errorf("WAL = %d bytes; the test wants it past its limit of %d", grown, limit)
	}
	bound := time.Second
	if raceEnabled {
		bound *= 5
	}
	if worst > bound {
		t.Errorf("worst flush beside the reader = %v; want under %v", worst, bound)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for walSize(path) > limit {
		if time.Now().After(deadline) {
			t.Fatalf("WAL still %d bytes 10 s after the reader left; want at most %d", walSize(path), limit)
		}
		flush(100)
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := h.count("cannot finish, a reader"), h.count("finish again"); a != 1 || b != 1 {
		t.Errorf("reports = %d blocked, %d finished again; want 1 and 1: %v", a, b, h)
	}
	if n := metaValue(t, path, "checkpoints_blocked"); n != 1 {
		t.Errorf("meta checkpoints_blocked = %d; want 1", n)
	}
	checkConsistent(t, path)
}

// TestCheckpointer_SmallCommitsCopied commits small transactions one
// after another, as collect does for a client that waits for each: the
// checkpointer runs at most once a while after such commits, and must
// still copy the last of them into the file, with no commit after it to
// ask again.
func TestCheckpointer_SmallCommitsCopied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	// No idle maintenance, which would ask for a checkpoint too.
	e := mustNew(t, path, exporter.WithMaintainEvery(time.Hour))
	ctx := context.Background()
	const rounds, size = 30, 50
	for range rounds {
		if err := e.ExportSpans(ctx, spans(size)); err != nil {
			t.Fatal(err)
		}
		if err := e.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The file alone, its WAL ignored, holds what was checkpointed.
	inFile := func() int64 {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int64
		if err := db.QueryRow("SELECT count(*) FROM spans").Scan(&n); err != nil {
			return -1 // a page the checkpoint is still writing
		}
		return n
	}
	waitFor(t, nil, "the last commit to be checkpointed", func() bool { return inFile() == rounds*size })
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
