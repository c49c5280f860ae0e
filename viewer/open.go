package viewer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lonelytrace/lonelytrace/schema"
)

// scanMmapSize is how much of a trace file a scan's connection maps
// while it reads a range of batches (SQLite's most). Reading through the
// map spares a read(2) and a copy of each page, about a tenth of the
// scan's time. Every page of a map that a read touches counts in the
// process's resident set, once per connection that maps it, for as long
// as the map lasts: a connection that kept its map scanned a 1.3 GB file
// into 1.6 GB resident. So the map lasts one read task, and every other
// query reads through SQLite's page cache of a few megabytes per
// connection.
const scanMmapSize = 0x7fff0000

// mapFile maps the file into conn's memory, or unmaps it, for good.
// SQLite keeps the map within the file's committed size, and in WAL mode
// a checkpoint only shrinks the file under no reader, so a live writer is
// safe beside it.
func mapFile(ctx context.Context, conn *sql.Conn, on bool) error {
	n := 0
	if on {
		n = scanMmapSize
	}
	_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA mmap_size = %d", n))
	return err
}

// openFile opens path read-only for the viewer: schema.OpenRead checks
// that it is a trace file of this version.
func openFile(ctx context.Context, path string) (*sql.DB, error) {
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConnsPerFile)
	db.SetMaxIdleConns(maxConnsPerFile)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}
