package schema

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var (
	// ErrNewerSchema is returned for a file written by a newer lonelytrace;
	// the file is not touched.
	ErrNewerSchema = errors.New("trace file has a newer schema")
	// ErrNotSQLite is returned for a file that is not an SQLite database.
	ErrNotSQLite = errors.New("not an SQLite database")
	// ErrNotTraceFile is returned for an SQLite database of some other
	// application.
	ErrNotTraceFile = errors.New("not a lonelytrace trace file")
)

// DefaultBusyTimeout is how long a statement waits for another connection's
// lock before failing with SQLITE_BUSY.
const DefaultBusyTimeout = 5 * time.Second

// sqliteHeader is the first 16 bytes of every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// OpenWrite opens or creates the trace file at path for writing: it checks
// that the file is a lonelytrace file it can read before SQLite is allowed
// to change a byte, sets WAL mode, synchronous=NORMAL and the busy timeout,
// applies the migrations and brings the views to their current definition. The returned DB holds exactly one
// connection, for the caller's one writer goroutine.
func OpenWrite(ctx context.Context, path string, busyTimeout time.Duration) (*sql.DB, error) {
	isNew, err := checkFile(path)
	if err != nil {
		return nil, err
	}
	db, err := openOne(path, "rwc", busyTimeout)
	if err != nil {
		return nil, err
	}
	if err := prepareWrite(ctx, db, path, isNew); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func prepareWrite(ctx context.Context, db *sql.DB, path string, isNew bool) error {
	conn, err := versionedConn(ctx, db, path)
	if err != nil {
		return err
	}
	defer conn.Close()
	if isNew {
		// Both must come before the first table exists. Incremental auto
		// vacuum lets retention give freed pages back with PRAGMA
		// incremental_vacuum. Pages of 16 KiB rather than 4 KiB split and
		// rebalance a quarter as often as rows are appended, and keep a
		// fourth of the pointer-map entries: about a tenth less writer CPU
		// per span (BenchmarkWriter), the same bytes per span.
		for _, pragma := range []string{"PRAGMA page_size = 16384", "PRAGMA auto_vacuum = INCREMENTAL"} {
			if _, err := conn.ExecContext(ctx, pragma); err != nil {
				return fmt.Errorf("%s on %s: %w", pragma, path, err)
			}
		}
	}
	err = SetWriteMode(path, func(q string) (mode string, err error) {
		err = conn.QueryRowContext(ctx, q).Scan(&mode)
		return mode, err
	}, func(q string) error {
		_, err := conn.ExecContext(ctx, q)
		return err
	})
	if err != nil {
		return err
	}
	if err := migrate(ctx, conn); err != nil {
		return fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := ensureViews(ctx, conn); err != nil {
		return fmt.Errorf("migrate %s: %w", path, err)
	}
	return nil
}

// WritePragmas are set on every writing connection after journal_mode=WAL.
// synchronous=NORMAL: in WAL mode a commit survives a crash of the
// process, and a power cut at worst loses the last transactions, never
// the file. temp_store=MEMORY keeps the statement journal of the
// multi-row inserts off the disk. A larger page cache keeps a whole
// transaction's pages in memory until it commits. 8 MiB of 16 KiB pages
// take about 16 MiB resident: modernc.org's allocator rounds each page
// with its header up to a 32 KiB slot. 16 MiB (32 resident) wrote no
// faster (BenchmarkWriter, and flat out into a file of 2M spans).
//
// They are per connection: a writer that opens its own connection to the
// file after OpenWrite (the exporter's, through SQLite's C API) sets them
// on it too.
var WritePragmas = []string{"PRAGMA synchronous = NORMAL", "PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -8192"}

// SetWriteMode sets up a writing connection to the file at path, through
// its own query (of one text) and exec functions: WAL mode, checked, then
// WritePragmas. OpenWrite's connection and the exporter's own, through
// SQLite's C API, are both set up by it.
func SetWriteMode(path string, queryText func(sql string) (string, error), exec func(sql string) error) error {
	mode, err := queryText("PRAGMA journal_mode = WAL")
	if err != nil {
		return fmt.Errorf("set WAL mode on %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("set WAL mode on %s: journal_mode is %q (is the file or its folder read-only?)", path, mode)
	}
	for _, pragma := range WritePragmas {
		if err := exec(pragma); err != nil {
			return fmt.Errorf("%s on %s: %w", pragma, path, err)
		}
	}
	return nil
}

// WriteURI is the SQLite URI that opens path read-write, without the
// driver's parameters: for the writer's connection through SQLite's C
// API (internal/sqlitec), after OpenWrite has checked and migrated the
// file.
func WriteURI(path string) string { return fileURI(path) + "?mode=rw" }

// ReadOption configures OpenRead.
type ReadOption interface {
	apply(readConfig) readConfig
}

type readConfig struct {
	mmapSize int64
}

type readOptionFunc func(readConfig) readConfig

func (f readOptionFunc) apply(c readConfig) readConfig { return f(c) }

// WithMmapSize lets every connection read up to n bytes of the file through
// a memory map (PRAGMA mmap_size) instead of one read call per page: much
// faster for queries that read many pages. SQLite keeps the map within the
// file's committed size. Default 0, no map.
func WithMmapSize(n int64) ReadOption {
	return readOptionFunc(func(c readConfig) readConfig { c.mmapSize = max(n, 0); return c })
}

// OpenRead opens an existing trace file read-only (mode=ro and query_only
// on every connection). It never writes to the file, not even to migrate
// it, so it can sit beside a live writer; a file of another version than
// this package's is refused.
//
// Where no writer can exist (the file is on a read-only mount, or in a
// folder nobody may write), SQLite could not create the -shm it reads a
// WAL-mode file through, so the file is opened as immutable, the way Check
// reads it; a -wal left there by a writer that never closed the file is
// read through its -shm when that is there too, and is otherwise an error
// wrapping ErrWALUnreadable, never silently skipped.
func OpenRead(ctx context.Context, path string, opts ...ReadOption) (*sql.DB, error) {
	var cfg readConfig
	for _, o := range opts {
		cfg = o.apply(cfg)
	}
	isNew, err := checkFile(path)
	if err != nil {
		return nil, err
	}
	if isNew {
		if _, err := os.Stat(path); err == nil {
			return nil, fmt.Errorf("open %s: the file is empty: no trace file has been written there yet", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, os.ErrNotExist)
	}
	params, err := readParams(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	uri := dsn(path, "ro", DefaultBusyTimeout) + params + "&_pragma=query_only(1)"
	if cfg.mmapSize > 0 {
		uri += fmt.Sprintf("&_pragma=mmap_size(%d)", cfg.mmapSize)
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		err = checkVersion(ctx, conn, path)
		if err == nil {
			var v int
			if err = conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err == nil && v < Version {
				err = fmt.Errorf("open %s: file is version %d, this lonelytrace reads version %d; open it once with the exporter to migrate it", path, v, Version)
			}
		}
		conn.Close()
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openOne opens path in mode as a DB of exactly one connection, kept open
// for as long as the DB is.
func openOne(path, mode string, busyTimeout time.Duration) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, mode, busyTimeout))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// ReadOnlyURI is the SQLite URI that opens path read-only, without the
// driver's parameters: for a connection opened through SQLite's C API
// (the viewer's scan connections, internal/sqlitec), after OpenRead has
// checked the file.
func ReadOnlyURI(path string) string {
	params, _ := readParams(path) // OpenRead has refused the file on an error
	return fileURI(path) + "?mode=ro" + params
}

// ErrWALUnreadable is returned when the committed transactions of a
// file's -wal cannot be read: the -wal holds frames, there is no -shm
// beside it and none can be created (a read-only mount). Reading the file
// without them would show an older state as if it were the file's.
var ErrWALUnreadable = errors.New("the write-ahead log cannot be read")

// walHeaderSize is the size of a -wal file's header; a -wal no longer
// than that holds no transaction.
const walHeaderSize = 32

// immutableParam opens a file that cannot change without locks or -shm.
const immutableParam = "&immutable=1"

// readParams returns the URI parameters, beyond mode=ro, that let SQLite
// read path where it can write nothing beside it. SQLite reads a WAL-mode
// file through a -shm that it creates when absent, so without help it
// cannot open a file on a read-only mount ("unable to open database file
// (14)"). Where no writer can exist, immutable=1 reads the file without
// locks or -shm. That is only right when there is no -wal with frames,
// whose transactions immutable would skip: a -wal with its -shm beside it
// is read through the -shm opened read-only (no parameter needed), and a
// -wal without one is ErrWALUnreadable.
func readParams(path string) (string, error) {
	if !noWriter(path) {
		return "", nil
	}
	wal, walErr := os.Stat(path + "-wal")
	if walErr != nil || wal.Size() <= walHeaderSize {
		return immutableParam, nil
	}
	if _, err := os.Stat(path + "-shm"); err == nil {
		return "", nil
	}
	return "", fmt.Errorf("%w: %s holds %d bytes of transactions never copied into the file (a writer stopped without closing it), which SQLite reads only through a %s-shm that cannot be created here, where nothing can be written; copy the file and its -wal to a writable folder and read the copy", ErrWALUnreadable, path+"-wal", wal.Size(), filepath.Base(path))
}

// noWriter reports whether no process can write the file at path: its
// file system is mounted read-only, or neither its folder nor the file
// grants anyone write permission (so no writer can create its -wal).
func noWriter(path string) bool {
	dir := filepath.Dir(path)
	if onReadOnlyFS(dir) {
		return true
	}
	di, err := os.Stat(dir)
	if err != nil {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && di.Mode().Perm()&0o222 == 0 && fi.Mode().Perm()&0o222 == 0
}

// dsn builds the modernc.org/sqlite URI that opens path in mode with a
// busy timeout.
func dsn(path, mode string, busyTimeout time.Duration) string {
	return fmt.Sprintf("%s?mode=%s&_pragma=busy_timeout(%d)", fileURI(path), mode, busyTimeout.Milliseconds())
}

// fileURI is the SQLite URI of path, without parameters. The path is
// escaped so that '?', '#' and '%' in a file name stay part of the name.
func fileURI(path string) string {
	return "file:" + uriEscaper.Replace(path)
}

var uriEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// checkFile looks at path with plain file I/O, before SQLite opens it, so
// that a file we must refuse is never changed. isNew is true when there is
// nothing at path yet (or an empty file).
func checkFile(path string) (isNew bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	if fi.IsDir() {
		return false, fmt.Errorf("open %s: is a directory, not a trace file", path)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("open %s: not a regular file", path)
	}
	if fi.Size() == 0 {
		return true, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil || string(h[:16]) != sqliteHeader {
		return false, fmt.Errorf("open %s: %w (its first bytes are not the SQLite header)", path, ErrNotSQLite)
	}
	userVersion := binary.BigEndian.Uint32(h[60:64])
	appID := binary.BigEndian.Uint32(h[68:72])
	if appID != 0 && appID != ApplicationID {
		return false, fmt.Errorf("open %s: %w (application_id is %#x)", path, ErrNotTraceFile, appID)
	}
	if userVersion > Version {
		return false, fmt.Errorf("open %s: %w: file is version %d, this lonelytrace reads up to %d", path, ErrNewerSchema, userVersion, Version)
	}
	return false, nil
}

// versionedConn takes a connection of db, the file at path, whose
// version checkVersion accepts.
func versionedConn(ctx context.Context, db *sql.DB, path string) (*sql.Conn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkVersion(ctx, conn, path); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// checkVersion repeats checkFile's header checks through SQLite, which
// also sees what the WAL holds, and reads the schema, which fails on a
// corrupt file.
func checkVersion(ctx context.Context, conn *sql.Conn, path string) error {
	var appID, v, tables int
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return fmt.Errorf("open %s: read schema (is the file corrupt?): %w", path, err)
	}
	if appID != 0 && appID != ApplicationID || appID == 0 && tables > 0 {
		return fmt.Errorf("open %s: %w", path, ErrNotTraceFile)
	}
	if v > Version {
		return fmt.Errorf("open %s: %w: file is version %d, this lonelytrace reads up to %d", path, ErrNewerSchema, v, Version)
	}
	return nil
}
