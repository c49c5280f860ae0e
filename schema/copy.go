package schema

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
// Without sel it copies from a snapshot: one read transaction on src,
// held while SQLite's online backup copies its pages to a private file
// beside dst in steps, at disk speed, then compacted (VACUUM INTO) away
// from src. With sel it reads only what sel selects, in one read
// transaction on src (copySelected), so that a window's copy costs in
// proportion to the window, not to the file. Either way a live writer
// never waits for it; only its WAL cannot be checkpointed past the read
// transaction meanwhile. dst gets its name (and src's mode) only once
// complete.
func Copy(ctx context.Context, src, dst string, sel *TraceSelection) (CopyStats, error) {
	return CopyProgress(ctx, src, dst, sel, nil)
}

// CopyProgress is Copy telling progress, when not nil, how far it has
// got: pages of the backup done of all (a whole copy), or steps done of
// all (a copy of a selection).
func CopyProgress(ctx context.Context, src, dst string, sel *TraceSelection, progress func(done, total int64)) (CopyStats, error) {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	var st CopyStats
	if _, err := os.Lstat(dst); err == nil {
		return st, fmt.Errorf("copy to %s: %w", dst, os.ErrExist)
	}
	fi, live, err := copySource(src)
	if err != nil {
		return st, err
	}
	r := &CheckReport{Path: src}
	out, err := privateFile(dst, "partial")
	if err != nil {
		return st, err
	}
	defer removeDB(out)
	if sel != nil {
		st, err = copySelected(ctx, r, live, out, sel, progress)
	} else {
		st, err = copyWhole(ctx, r, live, dst, out, progress)
	}
	if err != nil {
		return st, err
	}
	return publishCopy(out, dst, fi.Mode().Perm(), st)
}

// copySource looks at src with plain file I/O before SQLite opens it: a
// regular file with a trace file's header. live reports whether a
// writer may have it open (a -wal or -shm beside it).
func copySource(src string) (fi os.FileInfo, live bool, err error) {
	fi, err = os.Stat(src)
	if err != nil {
		return nil, false, fmt.Errorf("copy %s: %w", src, withoutPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("copy %s: not a regular file", src)
	}
	if err := checkHeader(src); err != nil {
		return nil, false, fmt.Errorf("copy %w", err)
	}
	_, walErr := os.Stat(src + "-wal")
	_, shmErr := os.Stat(src + "-shm")
	return fi, walErr == nil || shmErr == nil, nil
}

// privateFile creates an empty file beside dst, named after it and kind,
// for this copy only.
func privateFile(dst, kind string) (string, error) {
	dir, base := filepath.Split(dst)
	f, err := os.CreateTemp(dir, "."+base+".*."+kind)
	if err != nil {
		return "", fmt.Errorf("copy to %s: %w", dst, err)
	}
	f.Close()
	return f.Name(), nil
}

// copyWhole writes the whole file r.Path compacted to out (an empty
// file), from a snapshot: the backup copies its pages within one read
// transaction to a private file beside dst, which is then compacted
// away from r.Path.
func copyWhole(ctx context.Context, r *CheckReport, live bool, dst, out string, progress func(done, total int64)) (CopyStats, error) {
	db, err := openCheck(r.Path, live)
	if err != nil {
		return CopyStats{}, fmt.Errorf("copy %w", err)
	}
	defer db.Close()
	tmp, err := privateFile(dst, "snapshot")
	if err != nil {
		return CopyStats{}, err
	}
	defer removeDB(tmp)
	if err := snapshot(ctx, db, r, tmp, progress); err != nil {
		return CopyStats{}, err
	}
	db.Close()
	st, err := compact(ctx, tmp, out)
	if err != nil {
		return st, fmt.Errorf("copy %s: %w", r.Path, err)
	}
	return st, nil
}

// publishCopy gives the finished copy at tmp its mode and its name dst,
// and its size to st.
func publishCopy(tmp, dst string, mode os.FileMode, st CopyStats) (CopyStats, error) {
	// The copy is readable by whom src is, and on disk before it has its
	// name.
	if err := syncMode(tmp, mode); err != nil {
		return st, fmt.Errorf("copy to %s: %w", dst, err)
	}
	// A link, unlike a rename, fails when dst appeared meanwhile.
	if err := os.Link(tmp, dst); err != nil {
		return st, fmt.Errorf("copy to %s: %w", dst, err)
	}
	fi, err := os.Stat(dst)
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
func snapshot(ctx context.Context, db *sql.DB, r *CheckReport, path string, progress func(done, total int64)) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("copy %s: %w", r.Path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("copy %w", checkErr(r.Path, "begin", err))
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	// The first read starts the transaction: the snapshot is taken here.
	if err := r.readIdentity(ctx, conn); err != nil {
		return fmt.Errorf("copy %w", err)
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
			return fmt.Errorf("copy %w", checkErr(r.Path, "start the backup", err))
		}
		for more := true; more; {
			if err := ctx.Err(); err != nil {
				bk.Finish()
				return err
			}
			if more, err = bk.Step(copyStepPages); err != nil {
				bk.Finish()
				return fmt.Errorf("copy %w", checkErr(r.Path, "backup step", err))
			}
			all := int64(bk.PageCount())
			progress(all-int64(bk.Remaining()), all)
		}
		if err := bk.Finish(); err != nil {
			return fmt.Errorf("copy %w", checkErr(r.Path, "finish the backup", err))
		}
		return nil
	})
}

// compact writes the private snapshot at tmp compacted to out (an empty
// file).
func compact(ctx context.Context, tmp, out string) (CopyStats, error) {
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
	if err := conn.QueryRowContext(ctx, "SELECT count(*), (SELECT count(DISTINCT trace_id) FROM traces) FROM spans").Scan(&st.Spans, &st.Traces); err != nil {
		return st, err
	}
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?", out); err != nil {
		return st, fmt.Errorf("vacuum into %s: %w", out, err)
	}
	return st, nil
}

// copySelected writes the traces sel selects in the file r.Path to out
// (an empty file), reading no more of the file than the window's spans
// and the small tables: the selection finds the traces through the
// op/time indexes and the batches rule, their spans through
// spans_by_trace, and rows go from the file to out in SQL, within one
// read transaction on the file, so that the copy is of one moment. out
// gets the file's page size and auto-vacuum mode, the current schema, and
// every row of the tables it does not select from (attribute keys, meta,
// statistics) as they are; the batches rows keep their ids and are
// brought to the spans copied, as retention brings them
// (schema/README.md, batches).
func copySelected(ctx context.Context, r *CheckReport, live bool, out string, sel *TraceSelection, progress func(done, total int64)) (CopyStats, error) {
	var st CopyStats
	// Not query-only: the copy writes through this connection into the
	// file it attaches.
	db, err := sql.Open("sqlite", readURI(r.Path, live))
	if err != nil {
		return st, fmt.Errorf("copy %s: %w", r.Path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return st, fmt.Errorf("copy %s: %w", r.Path, err)
	}
	defer conn.Close()
	if err := attachCopy(ctx, conn, r.Path, out); err != nil {
		return st, err
	}
	defer conn.ExecContext(context.Background(), "DETACH dst")
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return st, checkErr(r.Path, "begin", err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	// The first read of the file starts its read transaction: the copy is
	// of this moment.
	if err := r.readIdentity(ctx, conn); err != nil {
		return st, err
	}
	if r.MigrationPending {
		return st, fmt.Errorf("copy %s: the file is version %d, this lonelytrace copies version %d; open it once with the exporter to migrate it", r.Path, r.Version, Version)
	}
	if err := copyTraces(ctx, conn, r.Path, sel, progress); err != nil {
		return st, err
	}
	if err := copyWholeTables(ctx, conn); err != nil {
		return st, fmt.Errorf("copy %s: %w", r.Path, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*), (SELECT count(DISTINCT trace_id) FROM dst.traces) FROM dst.spans").Scan(&st.Spans, &st.Traces); err != nil {
		return st, fmt.Errorf("copy %s: %w", r.Path, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return st, fmt.Errorf("copy %s: commit: %w", r.Path, err)
	}
	return st, nil
}

// attachCopy makes out (an empty file) a trace file with the page size
// and auto-vacuum mode of the file src open on conn, and attaches it to
// conn as dst, without a journal or syncs: out is private until it is
// complete.
func attachCopy(ctx context.Context, conn *sql.Conn, src, out string) (err error) {
	var pageSize, autoVacuum int64
	if err := conn.QueryRowContext(ctx, "SELECT page_size, auto_vacuum FROM pragma_page_size, pragma_auto_vacuum").Scan(&pageSize, &autoVacuum); err != nil {
		return checkErr(src, "read page_size", err)
	}
	if err := createCopy(ctx, out, pageSize, autoVacuum); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := conn.ExecContext(ctx, "ATTACH ? AS dst", fileURI(out)+"?mode=rw"); err != nil {
		return fmt.Errorf("copy %s: attach %s: %w", src, out, err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.Background(), "DETACH dst")
		}
	}()
	for _, p := range []string{"PRAGMA dst.journal_mode = OFF", "PRAGMA dst.synchronous = OFF", "PRAGMA temp_store = MEMORY"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("copy %s: %s: %w", src, p, err)
		}
	}
	return nil
}

// copyTraces copies the traces sel selects in the file src open on conn,
// each whole, with their resources and scopes and the batches rows
// brought to the spans copied, into dst, within the read transaction open
// on conn.
func copyTraces(ctx context.Context, conn *sql.Conn, src string, sel *TraceSelection, progress func(done, total int64)) error {
	ids, err := sel.Traces(ctx, conn)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE keep (trace_id BLOB PRIMARY KEY) WITHOUT ROWID"); err != nil {
		return fmt.Errorf("copy %s: select traces: %w", src, err)
	}
	if err := fillKeep(ctx, conn, ids); err != nil {
		return fmt.Errorf("copy %s: select traces: %w", src, err)
	}
	steps := []string{
		// A trace may have a row in two generations: both are copied.
		"INSERT INTO dst.traces SELECT * FROM main.traces WHERE trace_id IN (SELECT trace_id FROM temp.keep)",
		"INSERT INTO dst.spans SELECT * FROM main.spans WHERE trace IN (SELECT id FROM dst.traces) ORDER BY id",
		"INSERT INTO dst.resources SELECT * FROM main.resources WHERE id IN (SELECT DISTINCT resource FROM dst.spans)",
		"INSERT INTO dst.scopes SELECT * FROM main.scopes WHERE id IN (SELECT DISTINCT scope FROM dst.spans)",
		`INSERT INTO dst.batches (` + batchColumns + `)
			SELECT b.id, b.first_span, b.last_span, count(*), min(s.start_ns), max(s.start_ns), b.written_ns
			FROM main.batches AS b JOIN dst.spans AS s ON s.id BETWEEN b.first_span AND b.last_span
			GROUP BY b.id`,
		"DROP TABLE temp.keep",
	}
	for i, q := range steps {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("copy %s: select traces, step %d: %w", src, i, err)
		}
		progress(int64(i+1), int64(len(steps)))
	}
	return nil
}

// selectedTables are the tables copySelected copies a part of; every
// other table of the file is copied whole.
var selectedTables = map[string]bool{TracesTable: true, SpansTable: true, "resources": true, "scopes": true, "batches": true}

// copyWholeTables replaces the rows of dst's tables that copySelected
// does not select from with the file's: attribute keys, meta, SQLite's
// statistics, and any table a later migration adds.
func copyWholeTables(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "SELECT name FROM dst.sqlite_schema WHERE type = 'table' AND (name NOT LIKE 'sqlite%' OR name = 'sqlite_stat1') ORDER BY name")
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("list tables: %w", err)
		}
		if !selectedTables[n] {
			names = append(names, n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	for _, n := range names {
		var inSrc int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM main.sqlite_schema WHERE type = 'table' AND name = ?", n).Scan(&inSrc); err != nil {
			return fmt.Errorf("copy table %s: %w", n, err)
		}
		// The names come from the schema, not from a user; quoted.
		q := `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
		stmts := []string{"DELETE FROM dst." + q}
		if inSrc > 0 {
			stmts = append(stmts, "INSERT INTO dst."+q+" SELECT * FROM main."+q)
		}
		for _, stmt := range stmts {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("copy table %s: %w", n, err)
			}
		}
	}
	return nil
}

// createCopy makes the empty file at path a trace file of this version
// with pageSize and autoVacuum, ready for copySelected to fill.
func createCopy(ctx context.Context, path string, pageSize, autoVacuum int64) error {
	db, err := sql.Open("sqlite", fileURI(path)+"?mode=rw")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Both must come before the first table exists; the numbers are
	// SQLite's own, read from the file.
	for _, p := range []string{fmt.Sprintf("PRAGMA page_size = %d", pageSize), fmt.Sprintf("PRAGMA auto_vacuum = %d", autoVacuum),
		"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := migrate(ctx, conn); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := ensureViews(ctx, conn); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// fillKeep writes ids into the temporary table keep, within the
// transaction open on conn.
func fillKeep(ctx context.Context, conn *sql.Conn, ids []trace.TraceID) error {
	ins, err := conn.PrepareContext(ctx, "INSERT INTO temp.keep (trace_id) VALUES (?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, id := range ids {
		if _, err := ins.ExecContext(ctx, id[:]); err != nil {
			return err
		}
	}
	return nil
}
