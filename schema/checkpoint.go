package schema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// OpenCheckpoint opens a second connection to the trace file at path,
// which a writer has open, to copy its WAL into the file (PRAGMA
// wal_checkpoint) without holding up the writer. It never creates the
// file and never changes its schema; a file that is not a lonelytrace
// file of a version this package knows, or not in WAL mode, is refused.
// The returned DB holds one connection.
func OpenCheckpoint(ctx context.Context, path string) (*sql.DB, error) {
	db, err := openOne(path, "rw", DefaultBusyTimeout)
	if err != nil {
		return nil, err
	}
	if err := checkCheckpoint(ctx, db, path); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func checkCheckpoint(ctx context.Context, db *sql.DB, path string) error {
	conn, err := versionedConn(ctx, db, path)
	if err != nil {
		return err
	}
	defer conn.Close()
	var appID int
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if appID != ApplicationID {
		return fmt.Errorf("open %s: %w", path, ErrNotTraceFile)
	}
	// Reading the mode does not set it: a file in another mode is not one
	// a writer of ours has open.
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open %s: journal_mode is %q, not wal", path, mode)
	}
	return nil
}
