package schema

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrCorrupt is returned by Check for a file SQLite finds damaged.
var ErrCorrupt = errors.New("trace file is corrupt")

// CheckReport is what Check found in one trace file.
type CheckReport struct {
	Path string `json:"path"`
	// Live is true when the file had a -wal or -shm beside it, as it has
	// while a writer has it open: Check then read it with shared locks,
	// in one read transaction. Otherwise it read it as immutable, without
	// locks, so that it created no -wal or -shm.
	Live bool `json:"live"`
	// Version is PRAGMA user_version; MigrationPending is true when it is
	// older than this package's Version (the exporter migrates the file
	// when it opens it).
	Version          int  `json:"version"`
	MigrationPending bool `json:"migration_pending"`
	// Integrity holds what PRAGMA integrity_check (quick_check when Quick)
	// said: "ok", or up to 20 problems.
	Integrity []string `json:"integrity"`
	Quick     bool     `json:"quick"`

	Spans     int64 `json:"spans"`
	Traces    int64 `json:"traces"` // distinct trace ids
	Resources int64 `json:"resources"`
	// Oldest and Newest are the earliest and latest span starts; zero in
	// a file without spans.
	Oldest time.Time `json:"oldest,omitzero"`
	Newest time.Time `json:"newest,omitzero"`
	// Dropped and Failed are the meta counts MetaDroppedSpans and
	// MetaFailedSpans.
	Dropped int64 `json:"dropped_spans"`
	Failed  int64 `json:"failed_spans"`

	PageSize  int64 `json:"page_size"`
	FileBytes int64 `json:"file_bytes"`
	WALBytes  int64 `json:"wal_bytes"`
	FreeBytes int64 `json:"free_bytes"` // free pages × page size, inside FileBytes

	// The retention the last writer recorded (MetaRetention*); Retention
	// is false when none is recorded. 0 means no limit.
	Retention        bool          `json:"retention_recorded"`
	MaxAge           time.Duration `json:"retention_max_age_ns"`
	MaxSize          int64         `json:"retention_max_bytes"`
	RetentionDeleted int64         `json:"retention_deleted_spans"`
}

// querier is a *sql.Tx or *sql.Conn.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkedTables are the tables every lonelytrace file has had since
// version 1: a file without them is not a trace file.
var checkedTables = []string{"meta", "attribute_keys", "resources", "scopes", "traces", "spans"}

// Check opens the trace file at path read-only and reports on it. It is
// safe beside a live writer: it never writes, never checkpoints, never
// takes a write lock, and on a file no process has open (no -wal or
// -shm beside it) it reads without locks so that it leaves no -wal or
// -shm behind. It reads in one read transaction, which pins the writer's
// WAL (the WAL grows, the writer never waits) for as long as the
// integrity check takes: quick shortens it.
//
// The error wraps ErrNotSQLite, ErrNotTraceFile, ErrNewerSchema or
// ErrCorrupt for those files; a report is returned with what was learnt
// before the problem, nil when nothing was.
func Check(ctx context.Context, path string, quick bool) (_ *CheckReport, err error) {
	// The helpers' errors start with the path: Copy shares them and names
	// itself the same way.
	defer func() {
		if err != nil {
			err = fmt.Errorf("check %w", err)
		}
	}()
	r := &CheckReport{Path: path, Quick: quick}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, withoutPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	r.FileBytes = fi.Size()
	if err := checkHeader(path); err != nil {
		return r, err
	}
	walInfo, walErr := os.Stat(path + "-wal")
	_, shmErr := os.Stat(path + "-shm")
	r.Live = walErr == nil || shmErr == nil
	if walErr == nil {
		r.WALBytes = walInfo.Size()
	}
	// Where no writer can exist, OpenRead's choice holds for Check too.
	params, err := readParams(path)
	if err != nil {
		return r, fmt.Errorf("check %s: %w", path, err)
	}
	r.Live = r.Live && params != immutableParam
	db, err := openCheck(path, r.Live)
	if err != nil {
		return r, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return r, checkErr(path, "begin", err)
	}
	defer tx.Rollback()
	if err := r.readIdentity(ctx, tx); err != nil {
		return r, err
	}
	if err := r.readIntegrity(ctx, tx); err != nil {
		return r, err
	}
	if err := r.readContents(ctx, tx); err != nil {
		return r, err
	}
	return r, nil
}

// checkHeader reads the first 100 bytes with plain file I/O.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, withoutPath(err))
	}
	defer f.Close()
	var h [100]byte
	n, err := io.ReadFull(f, h[:])
	switch {
	case n == 0:
		return fmt.Errorf("%s: %w: the file is empty", path, ErrNotSQLite)
	case err != nil || string(h[:16]) != sqliteHeader:
		return fmt.Errorf("%s: %w: its first bytes are not the SQLite header", path, ErrNotSQLite)
	}
	if id := binary.BigEndian.Uint32(h[68:72]); id != 0 && id != ApplicationID {
		return fmt.Errorf("%s: %w: its application_id is %#x, not lonelytrace's %#x", path, ErrNotTraceFile, id, ApplicationID)
	}
	if v := binary.BigEndian.Uint32(h[60:64]); v > Version {
		return fmt.Errorf("%s: %w: the file is version %d, this lonelytrace reads up to %d", path, ErrNewerSchema, v, Version)
	}
	return nil
}

// withoutPath returns the cause of an *fs.PathError (a syscall.Errno, which
// errors.Is still matches with fs.ErrNotExist and the like), so that a
// message that starts with the path does not say it twice.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readURI is the URI that opens path read-only: with locks and the busy
// timeout when live, else immutable, which takes no lock and creates no
// -wal or -shm.
func readURI(path string, live bool) string {
	uri := fileURI(path) + "?mode=ro"
	if live {
		return uri + fmt.Sprintf("&_pragma=busy_timeout(%d)", DefaultBusyTimeout.Milliseconds())
	}
	return uri + "&immutable=1"
}

// openCheck opens path read-only (readURI), and query-only besides.
func openCheck(path string, live bool) (*sql.DB, error) {
	db, err := sql.Open("sqlite", readURI(path, live)+"&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// checkErr wraps err, adding ErrCorrupt when SQLite says the file is
// damaged.
func checkErr(path, what string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		if c := se.Code() & 0xff; c == sqlite3.SQLITE_CORRUPT || c == sqlite3.SQLITE_NOTADB {
			return fmt.Errorf("%s: %w: %s: %v", path, ErrCorrupt, what, err)
		}
	}
	return fmt.Errorf("%s: %s: %w", path, what, err)
}

func (r *CheckReport) readIdentity(ctx context.Context, tx querier) error {
	var appID int64
	if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return checkErr(r.Path, "read application_id", err)
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&r.Version); err != nil {
		return checkErr(r.Path, "read user_version", err)
	}
	if appID != 0 && appID != ApplicationID {
		return fmt.Errorf("%s: %w: its application_id is %#x, not lonelytrace's %#x", r.Path, ErrNotTraceFile, appID, ApplicationID)
	}
	if r.Version > Version {
		return fmt.Errorf("%s: %w: the file is version %d, this lonelytrace reads up to %d", r.Path, ErrNewerSchema, r.Version, Version)
	}
	var missing []string
	for _, t := range checkedTables {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", t).Scan(&n); err != nil {
			return checkErr(r.Path, "read the schema", err)
		}
		if n == 0 {
			missing = append(missing, t)
		}
	}
	if appID != ApplicationID || len(missing) > 0 {
		return fmt.Errorf("%s: %w: application_id %#x, tables missing: %s", r.Path, ErrNotTraceFile, appID, strings.Join(missing, ", "))
	}
	r.MigrationPending = r.Version < Version
	return nil
}

func (r *CheckReport) readIntegrity(ctx context.Context, tx *sql.Tx) error {
	pragma := "PRAGMA integrity_check(20)"
	if r.Quick {
		pragma = "PRAGMA quick_check(20)"
	}
	rows, err := tx.QueryContext(ctx, pragma)
	if err != nil {
		return checkErr(r.Path, pragma, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return checkErr(r.Path, pragma, err)
		}
		r.Integrity = append(r.Integrity, s)
	}
	if err := rows.Err(); err != nil {
		return checkErr(r.Path, pragma, err)
	}
	if len(r.Integrity) != 1 || r.Integrity[0] != "ok" {
		return fmt.Errorf("%s: %w: %s found %d problem(s), the first: %s", r.Path, ErrCorrupt, pragma, len(r.Integrity), firstOr(r.Integrity, "none reported"))
	}
	return nil
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

func (r *CheckReport) readContents(ctx context.Context, tx *sql.Tx) error {
	var oldest, newest sql.NullInt64
	var pages, free int64
	for _, q := range []struct {
		sql  string
		dest []any
	}{
		{"SELECT count(*), min(start_ns), max(start_ns) FROM spans", []any{&r.Spans, &oldest, &newest}},
		{"SELECT count(DISTINCT trace_id) FROM traces", []any{&r.Traces}},
		{"SELECT count(*) FROM resources", []any{&r.Resources}},
		{"PRAGMA page_size", []any{&r.PageSize}},
		{"PRAGMA page_count", []any{&pages}},
		{"PRAGMA freelist_count", []any{&free}},
	} {
		if err := tx.QueryRowContext(ctx, q.sql).Scan(q.dest...); err != nil {
			return checkErr(r.Path, q.sql, err)
		}
	}
	if oldest.Valid {
		r.Oldest, r.Newest = time.Unix(0, oldest.Int64).UTC(), time.Unix(0, newest.Int64).UTC()
	}
	r.FreeBytes = free * r.PageSize
	rows, err := tx.QueryContext(ctx, "SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?, ?)",
		MetaDroppedSpans, MetaFailedSpans, MetaRetentionMaxAge, MetaRetentionMaxSize, MetaRetentionDeleted)
	if err != nil {
		return checkErr(r.Path, "read meta", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var v sql.NullInt64
		if err := rows.Scan(&key, &v); err != nil {
			return checkErr(r.Path, "read meta", err)
		}
		switch key {
		case MetaDroppedSpans:
			r.Dropped = v.Int64
		case MetaFailedSpans:
			r.Failed = v.Int64
		case MetaRetentionMaxAge:
			r.Retention, r.MaxAge = true, time.Duration(v.Int64)
		case MetaRetentionMaxSize:
			r.Retention, r.MaxSize = true, v.Int64
		case MetaRetentionDeleted:
			r.RetentionDeleted = v.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return checkErr(r.Path, "read meta", err)
	}
	return nil
}
