package schema

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"go.opentelemetry.io/otel/trace"
	"modernc.org/sqlite"
)

// CopyStats says what Copy wrote.
type CopyStats struct {
	Spans, Traces int64
	Bytes         int64 // the destination's size
}

// copyStepPages is how many pages one backup step copies: a few MiB, so
// that a cancel is seen within milliseconds.
const copyStepPages = 256

// Copy writes a consistent, compacted copy of the trace file src to dst,
// which must not exist; with sel, only the traces it selects, each whole
// (every span of src with its trace id, with their resources and scopes).
//
// It copies from a snapshot: one read transaction on src, held while
// SQLite's online backup copies its pages to a private file beside dst
// in steps, at disk speed. A live writer never waits for it; only its WAL
// cannot be checkpointed past the snapshot meanwhile. Selecting and
// compacting (VACUUM INTO dst) then run on the private file, away from
// src.
func Copy(ctx context.Context, src, dst string, sel *TraceSelection) (CopyStats, error) {
	var st CopyStats
	if _, err := os.Lstat(dst); err == nil {
		return st, fmt.Errorf("copy to %s: %w", dst, os.ErrExist)
	}
	r := &CheckReport{Path: src}
	fi, err := os.Stat(src)
	if err != nil {
		return st, fmt.Errorf("copy %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("copy %s: not a regular file", src)
	}
	if err := checkHeader(src); err != nil {
		return st, err
	}
	_, walErr := os.Stat(src + "-wal")
	_, shmErr := os.Stat(src + "-shm")
	db, err := openCheck(src, walErr == nil || shmErr == nil)
	if err != nil {
		return st, err
	}
	defer db.Close()

	dir, base := filepath.Split(dst)
	tmp, err := os.CreateTemp(dir, "."+base+".*.snapshot")
	if err != nil {
		return st, fmt.Errorf("copy to %s: %w", dst, err)
	}
	tmp.Close()
	defer removeDB(tmp.Name())
	if err := snapshot(ctx, db, r, tmp.Name()); err != nil {
		return st, err
	}
	db.Close()

	out, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return st, fmt.Errorf("copy to %s: %w", dst, err)
	}
	out.Close()
	defer removeDB(out.Name())
	if st, err = selectAndCompact(ctx, tmp.Name(), out.Name(), sel); err != nil {
		return st, fmt.Errorf("copy %s: %w", src, err)
	}
	// The copy is readable by whom src is, and on disk before it has its
	// name.
	if err := syncMode(out.Name(), fi.Mode().Perm()); err != nil {
		return st, fmt.Errorf("copy to %s: %w", dst, err)
	}
	// A link, unlike a rename, fails when dst appeared meanwhile.
	if err := os.Link(out.Name(), dst); err != nil {
		return st, fmt.Errorf("copy to %s: %w", dst, err)
	}
	fi, err = os.Stat(dst)
	if err == nil {
		st.Bytes = fi.Size()
	}
	return st, err
}

// syncMode gives the file at path mode and syncs it.
func syncMode(path string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Chmod(mode)
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

// removeDB removes a private database file and whatever SQLite left
// beside it.
func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		os.Remove(p)
	}
}

// snapshot copies src's pages to path within one read transaction, in
// steps, after checking that src is a trace file of this version.
func snapshot(ctx context.Context, db *sql.DB, r *CheckReport, path string) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("copy %s: %w", r.Path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return checkErr(r.Path, "begin", err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	// The first read starts the transaction: the snapshot is taken here.
	if err := r.readIdentity(ctx, conn); err != nil {
		return err
	}
	if r.MigrationPending {
		return fmt.Errorf("copy %s: the file is version %d, this lonelytrace copies version %d; open it once with the exporter to migrate it", r.Path, r.Version, Version)
	}
	return conn.Raw(func(dc any) error {
		b, ok := dc.(interface {
			NewBackup(string) (*sqlite.Backup, error)
		})
		if !ok {
			return fmt.Errorf("copy %s: the SQLite driver has no backup", r.Path)
		}
		bk, err := b.NewBackup(fileURI(path))
		if err != nil {
			return checkErr(r.Path, "start the backup", err)
		}
		for more := true; more; {
			if err := ctx.Err(); err != nil {
				bk.Finish()
				return err
			}
			if more, err = bk.Step(copyStepPages); err != nil {
				bk.Finish()
				return checkErr(r.Path, "backup step", err)
			}
		}
		if err := bk.Finish(); err != nil {
			return checkErr(r.Path, "finish the backup", err)
		}
		return nil
	})
}

// selectAndCompact deletes from the private snapshot at tmp what sel does
// not select, then writes it compacted to out (an empty file).
func selectAndCompact(ctx context.Context, tmp, out string, sel *TraceSelection) (CopyStats, error) {
	var st CopyStats
	db, err := sql.Open("sqlite", fileURI(tmp)+"?mode=rw")
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return st, err
	}
	defer conn.Close()
	// The snapshot is private: no journal, no syncs.
	for _, p := range []string{"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA temp_store = MEMORY"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return st, fmt.Errorf("%s: %w", p, err)
		}
	}
	if sel != nil {
		if err := deleteUnselected(ctx, conn, sel); err != nil {
			return st, err
		}
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*), (SELECT count(DISTINCT trace_id) FROM traces) FROM spans").Scan(&st.Spans, &st.Traces); err != nil {
		return st, err
	}
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?", out); err != nil {
		return st, fmt.Errorf("vacuum into %s: %w", out, err)
	}
	return st, nil
}

// deleteUnselected keeps the traces sel selects, whole, and what they
// reference, and brings the batches rows to what is left as retention
// does (schema/README.md, batches).
func deleteUnselected(ctx context.Context, conn *sql.Conn, sel *TraceSelection) error {
	ids, err := sel.Traces(ctx, conn)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE keep (trace_id BLOB PRIMARY KEY) WITHOUT ROWID"); err != nil {
		return fmt.Errorf("select traces: %w", err)
	}
	if err := fillKeep(ctx, conn, ids); err != nil {
		return fmt.Errorf("select traces: %w", err)
	}
	steps := []string{
		// A trace may have a row in two generations: keep both.
		"DELETE FROM traces WHERE trace_id NOT IN (SELECT trace_id FROM keep)",
		"DELETE FROM spans WHERE trace NOT IN (SELECT id FROM traces)",
		"DELETE FROM resources WHERE id NOT IN (SELECT DISTINCT resource FROM spans)",
		"DELETE FROM scopes WHERE id NOT IN (SELECT DISTINCT scope FROM spans)",
		`UPDATE batches SET
			spans = (SELECT count(*) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span),
			min_start_ns = coalesce((SELECT min(start_ns) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span), min_start_ns),
			max_start_ns = coalesce((SELECT max(start_ns) FROM spans WHERE spans.id BETWEEN batches.first_span AND batches.last_span), max_start_ns)`,
		"DELETE FROM batches WHERE spans = 0",
		"DROP TABLE keep",
	}
	for i, q := range steps {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("select traces, step %d: %w", i, err)
		}
	}
	return nil
}

// fillKeep writes ids into the temporary table keep, in one transaction.
func fillKeep(ctx context.Context, conn *sql.Conn, ids []trace.TraceID) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, "INSERT INTO keep (trace_id) VALUES (?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, id := range ids {
		if _, err := ins.ExecContext(ctx, id[:]); err != nil {
			return err
		}
	}
	return tx.Commit()
}
