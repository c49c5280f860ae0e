package viewer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/lonelytrace/lonelytrace/schema"
)

// mmapSize is how much of a trace file each read connection maps. Reading
// through the map instead of one read(2) per page is what keeps a summary
// over a million spans under a second; it is address space, not memory.
// SQLite keeps the map within the file's committed size, and in WAL mode a
// checkpoint only shrinks the file under no reader, so a live writer is
// safe beside it.
const mmapSize = 1 << 30

// openFile opens path read-only for the viewer: schema.OpenRead checks
// that it is a trace file of this version, then the viewer's own pool is
// opened with query_only set and the file mapped into memory.
func openFile(ctx context.Context, path string) (*sql.DB, error) {
	checked, err := schema.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	checked.Close()
	db, err := sql.Open("sqlite", readDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConnsPerFile)
	db.SetMaxIdleConns(maxConnsPerFile)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// readDSN is schema.OpenRead's URI with the viewer's pragmas: '?', '#' and
// '%' in the path stay part of the name.
func readDSN(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return fmt.Sprintf("file:%s?mode=ro&_pragma=busy_timeout(%d)&_pragma=query_only(1)&_pragma=mmap_size(%d)",
		esc, schema.DefaultBusyTimeout.Milliseconds(), mmapSize)
}
